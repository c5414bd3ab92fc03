// etcdapi dashboard: plain modules, no build step. Everything refreshes from /eventos.
import { loadElections } from "./coord.js"; // elections and semaphores
import { $, api, el, json, left, ttlCell, token } from "./lib.js";
const debounce = (fn, ms = 150) => { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; };

// --- cluster: each member's own status; in demo mode (etcdapi demo) stop and start buttons ---
let demo = false; // set by start() when the supervisor answers /demo/membros
let clusterBusy = false;
const kib = (n) => n == null ? "—" : (n / 1024).toFixed(0) + " KiB";
async function loadCluster() {
  if (clusterBusy) return; // a member that does not answer takes up to 1 s
  clusterBusy = true;
  try {
    const [c, procs] = await Promise.all([api("GET", "/cluster"), demo ? api("GET", "/demo/membros") : null]);
    $("#cluster-summary").textContent = `${c.modo}${demo ? " · demo" : ""} · etcd ${c.versao_etcd} · revisão ${c.revisao} · termo ${c.termo_raft}`;
    $("#cluster-leader").textContent = c.lider ? `★ líder: ${c.lider}` : "sem líder: o cluster não tem quórum (escritas recusadas com 503)";
    $("#cluster-leader").className = "leader-banner " + (c.lider ? "ok" : "bad");
    const byName = new Map((procs || []).map((p) => [p.nome, p]));
    const maxRev = Math.max(0, ...c.membros.map((m) => m.revisao ?? 0));
    $("#cluster tbody").replaceChildren(...c.membros.map((m) => {
      const p = byName.get(m.nome);
      // The supervisor knows what it did to a member (parado, isolado, pausado...); etcd, whether it answers.
      const state = p && p.estado !== "ativo" ? p.estado : m.estado;
      const behind = m.revisao != null && m.revisao < maxRev;
      const actions = el("td", { className: "acoes" });
      for (const action of p ? memberActions[p.estado] || [] : []) {
        actions.append(el("button", {
          className: action + " " + (action === "iniciar" || action === "reconectar" || action === "retomar" ? "start" : "stop"),
          textContent: action, disabled: p.estado === "iniciando" || p.estado === "parando",
          title: actionHelp[action],
          onclick: (ev) => memberAction(ev.target, m.nome, action),
        }));
      }
      return el("tr", { className: (m.lider ? "leader-row " : "") + (state === "ativo" ? "" : "down"), dataset: { nome: m.nome, estado: state, lider: m.lider } },
        el("td", {}, el("strong", { textContent: m.nome }), m.lider ? el("span", { className: "leader", textContent: " ★ líder" }) : "", el("br"), el("code", { className: "id", textContent: m.id })),
        el("td", { className: "estado " + state, textContent: state === "inacessivel" ? "inacessível" : state }),
        el("td", { className: "rev" + (behind ? " behind" : ""), textContent: m.revisao ?? "—", title: behind ? "alcançando os outros membros" : "" }),
        el("td", { textContent: m.termo_raft ?? "—" }), el("td", { textContent: m.indice_raft ?? "—" }), el("td", { className: "db", textContent: kib(m.tamanho_db) }), actions);
    }));
    window.dispatchEvent(new CustomEvent("etcdapi:cluster", { detail: { ...c, demo, procs } }));
    setStatus(true);
  } catch (e) { setStatus(false, e.message); } finally { clusterBusy = false; }
}
// What can be done to a member in each state (SPEC §6).
const memberActions = {
  ativo: ["parar", "isolar", "pausar"], iniciando: ["parar"], parando: ["parar"],
  parado: ["iniciar"], isolado: ["parar", "reconectar"], pausado: ["parar", "retomar"],
};
const actionHelp = {
  parar: "SIGKILL: uma queda real", iniciar: "de volta, no mesmo diretório de dados",
  isolar: "corta toda mensagem raft entre ele e os outros; o processo e a API seguem no ar",
  reconectar: "as mensagens raft voltam a passar",
  pausar: "SIGSTOP: congela o processo, como uma pausa longa de GC ou de VM", retomar: "SIGCONT",
};
async function memberAction(button, nome, action) {
  button.disabled = true;
  button.textContent = action + "…";
  try { await api("POST", `/demo/membros/${nome}/${action}`); } catch (e) { alert(e.message); }
  loadCluster();
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
function renderServices() {
  if (retrying.has(loadServices)) return; // the table says it cannot be read
  instances = instances.filter((i) => left(i.expires) > 0);
  $("#services tbody").replaceChildren(...instances.map((i) =>
    el("tr", { dataset: { id: i.id } }, el("td", { textContent: i.nome }), el("td", {}, el("code", { textContent: i.endpoint })), ttlCell(i.expires))));
}
function renderLocks() {
  if (retrying.has(loadLocks)) return;
  locks = locks.filter((l) => left(l.expires) > 0);
  $("#locks tbody").replaceChildren(...locks.map((l) =>
    el("tr", { dataset: { recurso: l.recurso } }, el("td", { textContent: l.recurso }), el("td", { textContent: l.holder }), el("td", {}, el("code", { textContent: l.token })), ttlCell(l.expires), el("td", { textContent: l.fila ?? 0 }))));
}
setInterval(() => { renderServices(); renderLocks(); }, 1000);
setInterval(() => loadLocks().catch(() => {}), 1000); // lines of waiters: see coord.js on why not a stream

// --- live events: the recent ones on load, then each as it happens ---
const recent = 100; // revisions of history shown on load
function feed(ev) {
  const list = $("#events");
  if (list.querySelector(`li[data-rev="${ev.revisao}"][data-chave="${CSS.escape(ev.chave)}"]`)) return;
  const li = el("li", { dataset: { rev: ev.revisao, chave: ev.chave } }, el("span", { className: ev.tipo, textContent: ev.tipo }), ` rev ${ev.revisao} `, el("code", { textContent: ev.chave }), " ", json(ev.valor));
  // Newest first; the history of several prefixes arrives interleaved.
  const after = [...list.children].find((x) => Number(x.dataset.rev) < ev.revisao);
  list.insertBefore(li, after || null);
  while (list.children.length > 200) list.lastChild.remove();
  window.dispatchEvent(new CustomEvent("etcdapi:event", { detail: ev }));
}
// readable runs a section's load. While it fails (etcd without quorum answers
// 503), the table says the data cannot be read now, rather than look empty as
// if it were gone, and the load is tried again.
const retrying = new Set();
async function readable(load, table) {
  try {
    await load();
    retrying.delete(load);
  } catch (e) {
    const cols = $(table + " thead tr").children.length;
    $(table + " tbody").replaceChildren(el("tr", { className: "unreadable" },
      el("td", { colSpan: cols, textContent: `Não é possível ler agora (${e.message}). Tentando de novo…` })));
    if (!retrying.has(load)) {
      retrying.add(load);
      setTimeout(() => { retrying.delete(load); readable(load, table); }, 2000);
    }
  }
}
const reload = {
  "/users/": debounce(() => readable(loadUsers, "#users")),
  "/config/app/": null,
  "/services/": debounce(() => readable(loadServices, "#services")),
  "/locks/": debounce(() => readable(loadLocks, "#locks")),
  "/election/": debounce(() => loadElections().catch(() => {})),
};
function watch(prefix, since) {
  let last = String(Math.max(1, since)); // desde=0 would mean "from now"; revision 1 is the empty start
  let opened = false, seen = false;
  const open = () => {
    const q = new URLSearchParams({ prefixo: prefix });
    if (last) q.set("desde", last);
    if (token) q.set("access_token", token);
    const es = new EventSource("/eventos?" + q);
    const onEvent = (m) => {
      last = m.lastEventId;
      seen = true;
      const ev = JSON.parse(m.data);
      feed(ev);
      if (prefix === "/config/app/") {
        const k = ev.chave.slice(prefix.length);
        ev.tipo === "delete" ? config.delete(k) : config.set(k, ev.valor);
        renderConfig();
      } else reload[prefix]?.();
      $("#cluster-summary").textContent = $("#cluster-summary").textContent.replace(/revisão \d+/, "revisão " + ev.revisao);
    };
    es.addEventListener("put", onEvent);
    es.addEventListener("delete", onEvent);
    es.onerror = () => {
      es.close();
      if (!opened && !seen && last) {
        last = ""; // never opened: that history is compacted (410); from now on, then
        setTimeout(open, 100);
        return;
      }
      if (opened) setStatus(false, "stream interrompido");
      setTimeout(open, opened ? 1000 : 5000); // never opened: this etcdapi does not know the prefix (400)
    };
    es.onopen = () => { opened = true; setStatus(true); };
  };
  open();
}

async function start() {
  await loadCluster(); // asks for the token first, when one is needed
  // Demo mode (etcdapi demo): the supervisor answers /demo/membros; a member answers 404.
  demo = await api("GET", "/demo/membros").then(() => true, () => false);
  if (demo) await loadCluster();
  await Promise.all([readable(loadUsers, "#users"), readable(loadConfig, "#config"), readable(loadServices, "#services"), readable(loadLocks, "#locks")]);
  const rev = Number($("#cluster-summary").textContent.match(/revisão (\d+)/)?.[1] || 0);
  for (const prefix of Object.keys(reload)) watch(prefix, rev - recent);
  // A new leader shows within a second of its election; more often in demo mode.
  setInterval(loadCluster, demo ? 500 : 2000);
}
start();
