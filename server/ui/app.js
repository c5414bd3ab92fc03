// etcdapi dashboard: plain modules, no build step. Everything refreshes from /eventos.
import "./coord.js"; // elections and semaphores
const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("etcdapi-token") || "";

async function api(method, path, body, headers = {}) {
  const opts = { method, headers: { ...headers } };
  if (token) opts.headers.Authorization = "Bearer " + token;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    token = prompt("Token da API (API_TOKEN):") || "";
    sessionStorage.setItem("etcdapi-token", token);
    return api(method, path, body, headers);
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(data?.erro ? data.erro + (data.campos ? ": " + Object.entries(data.campos).map(([k, v]) => `${k} ${v}`).join("; ") : "") : resp.statusText);
  return data;
}

const el = (tag, { dataset, ...props } = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
};
const json = (v) => el("code", { textContent: JSON.stringify(v) });
const debounce = (fn, ms = 150) => { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; };

// --- cluster ---
async function loadCluster() {
  try {
    const c = await api("GET", "/cluster");
    $("#cluster-summary").textContent = `${c.modo} · etcd ${c.versao_etcd} · revisão ${c.revisao} · db ${(c.tamanho_db / 1024).toFixed(0)} KiB`;
    $("#cluster tbody").replaceChildren(...c.membros.map((m) =>
      el("tr", {}, el("td", { textContent: m.nome }), el("td", {}, el("code", { textContent: m.id })),
        el("td", { textContent: (m.urls_cliente || []).join(" ") }), el("td", { className: m.lider ? "leader" : "", textContent: m.lider ? "★ líder" : "" }))));
    setStatus(true);
  } catch (e) { setStatus(false, e.message); }
}
function setStatus(ok, msg) {
  const s = $("#status");
  s.className = "pill " + (ok ? "ok" : "bad");
  s.textContent = ok ? "ao vivo" : "sem conexão: " + (msg || "");
}

// --- users ---
async function loadUsers() {
  const q = $("#user-search").value.trim();
  const users = await api("GET", q ? "/usuarios/buscar?nome=" + encodeURIComponent(q) : "/usuarios?limite=1000");
  $("#users-count").textContent = `(${users.length})`;
  $("#users tbody").replaceChildren(...users.map((u) =>
    el("tr", { dataset: { id: u._id } }, el("td", { textContent: u.nome }), el("td", { textContent: u.email ?? "" }), el("td", { textContent: u.idade ?? "" }),
      el("td", {}, el("button", { className: "link", textContent: "editar", onclick: () => editUser(u) }),
        el("button", { className: "link", textContent: "apagar", onclick: () => api("DELETE", "/usuarios/" + u._id).catch((e) => alert(e.message)) })))));
}
function editUser(u) {
  $("#user-id").value = u?._id ?? "";
  $("#user-nome").value = u?.nome ?? "";
  $("#user-email").value = u?.email ?? "";
  $("#user-idade").value = u?.idade ?? "";
  $("#user-save").textContent = u ? "salvar" : "criar";
  $("#user-cancel").hidden = !u;
}
$("#user-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("#user-id").value;
  const body = { nome: $("#user-nome").value, email: $("#user-email").value || null, idade: $("#user-idade").value === "" ? null : Number($("#user-idade").value) };
  try {
    await api(id ? "PATCH" : "POST", id ? "/usuarios/" + id : "/usuarios", body);
    $("#user-error").textContent = "";
    editUser(null);
  } catch (e) { $("#user-error").textContent = e.message; }
});
$("#user-cancel").addEventListener("click", () => editUser(null));
$("#user-search").addEventListener("input", debounce(loadUsers, 200));

// --- configuration ---
const config = new Map();
async function loadConfig() {
  const all = await api("GET", "/config");
  config.clear();
  for (const [k, v] of Object.entries(all)) config.set(k, v);
  renderConfig();
}
function renderConfig() {
  $("#config tbody").replaceChildren(...[...config.keys()].sort().map((k) =>
    el("tr", { dataset: { chave: k } }, el("td", {}, el("code", { textContent: k })), el("td", { className: "valor" }, json(config.get(k))),
      el("td", {}, el("button", { className: "link", textContent: "histórico", onclick: () => showHistory(k) }),
        el("button", { className: "link", textContent: "editar", onclick: () => { $("#config-chave").value = k; $("#config-valor").value = JSON.stringify(config.get(k)); } })))));
}
async function showHistory(k) {
  const h = await api("GET", `/config/${k}/historico`).catch(() => []);
  $("#history-key").textContent = k;
  $("#config-history ol").replaceChildren(...h.map((c) => el("li", {}, el("span", { className: c.tipo, textContent: c.tipo }), ` rev ${c.revisao} `, json(c.valor))));
  $("#config-history").hidden = false;
}
$("#config-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  let valor;
  try { valor = JSON.parse($("#config-valor").value); } catch { valor = $("#config-valor").value; }
  try {
    await api("PUT", "/config/" + $("#config-chave").value, { valor });
    $("#config-error").textContent = "";
  } catch (e) { $("#config-error").textContent = e.message; }
});

// --- services and locks: TTLs count down locally between refreshes ---
let instances = [], locks = [];
async function loadServices() {
  const names = await api("GET", "/servicos");
  const lists = await Promise.all(names.map((s) => api("GET", "/servicos/" + s.nome).then((is) => is.map((i) => ({ ...i, nome: s.nome })))));
  const now = Date.now();
  instances = lists.flat().map((i) => ({ ...i, expires: now + i.ttl_restante * 1000 }));
  renderServices();
}
async function loadLocks() {
  const now = Date.now();
  locks = (await api("GET", "/lock")).map((l) => ({ ...l, expires: now + l.ttl_restante * 1000 }));
  renderLocks();
}
const left = (t) => Math.max(0, Math.ceil((t - Date.now()) / 1000));
const ttlCell = (t) => el("td", { className: "ttl" + (left(t) <= 5 ? " low" : ""), textContent: left(t) + " s" });
function renderServices() {
  instances = instances.filter((i) => left(i.expires) > 0);
  $("#services tbody").replaceChildren(...instances.map((i) =>
    el("tr", { dataset: { id: i.id } }, el("td", { textContent: i.nome }), el("td", {}, el("code", { textContent: i.endpoint })), ttlCell(i.expires))));
}
function renderLocks() {
  locks = locks.filter((l) => left(l.expires) > 0);
  $("#locks tbody").replaceChildren(...locks.map((l) =>
    el("tr", { dataset: { recurso: l.recurso } }, el("td", { textContent: l.recurso }), el("td", { textContent: l.holder }), el("td", {}, el("code", { textContent: l.token })), ttlCell(l.expires), el("td", { textContent: l.fila ?? 0 }))));
}
setInterval(() => { renderServices(); renderLocks(); }, 1000);
setInterval(() => loadLocks().catch(() => {}), 1000); // lines of waiters: see coord.js on why not a stream

// --- live events ---
function feed(ev) {
  const list = $("#events");
  list.prepend(el("li", {}, el("span", { className: ev.tipo, textContent: ev.tipo }), ` rev ${ev.revisao} `, el("code", { textContent: ev.chave }), " ", json(ev.valor)));
  while (list.children.length > 200) list.lastChild.remove();
}
const reload = {
  "/users/": debounce(loadUsers),
  "/config/app/": null,
  "/services/": debounce(loadServices),
  "/locks/": debounce(loadLocks),
};
function watch(prefix) {
  let last = "";
  const open = () => {
    const q = new URLSearchParams({ prefixo: prefix });
    if (last) q.set("desde", last);
    if (token) q.set("access_token", token);
    const es = new EventSource("/eventos?" + q);
    const onEvent = (m) => {
      last = m.lastEventId;
      const ev = JSON.parse(m.data);
      feed(ev);
      if (prefix === "/config/app/") {
        const k = ev.chave.slice(prefix.length);
        ev.tipo === "delete" ? config.delete(k) : config.set(k, ev.valor);
        renderConfig();
      } else reload[prefix]();
      $("#cluster-summary").textContent = $("#cluster-summary").textContent.replace(/revisão \d+/, "revisão " + ev.revisao);
    };
    es.addEventListener("put", onEvent);
    es.addEventListener("delete", onEvent);
    es.onerror = () => { es.close(); setStatus(false, "stream interrompido"); setTimeout(open, 1000); };
    es.onopen = () => setStatus(true);
  };
  open();
}

async function start() {
  await loadCluster(); // asks for the token first, when one is needed
  await Promise.all([loadUsers(), loadConfig(), loadServices(), loadLocks()]).catch((e) => setStatus(false, e.message));
  Object.keys(reload).forEach(watch);
  setInterval(loadCluster, 3000);
}
start();
