// Elections and semaphores on the dashboard. app.js reloads the elections on
// each event of its /election/ stream; the semaphores are polled (see below).
import { $, api, el, left, ttlCell } from "./lib.js";
const code = (text) => el("code", { textContent: text });

// --- elections: leader, its value, and the candidates in line ---
let elections = [];
export async function loadElections() {
  const now = Date.now();
  elections = (await api("GET", "/eleicao")).map((e) => ({ ...e, expires: now + e.ttl_restante * 1000 }));
  renderElections();
}
function renderElections() {
  $("#elections tbody").replaceChildren(...elections.map((e) =>
    el("tr", {}, el("td", { textContent: e.eleicao }), el("td", { className: "leader", textContent: "★ " + e.lider }),
      el("td", {}, code(JSON.stringify(e.valor))), el("td", {}, code(String(e.token))), ttlCell(e.expires),
      el("td", { textContent: e.candidatos.slice(1).join(", ") || "—" }))));
}

// --- semaphores: holders of the limit, and the line ---
let semaphores = [];
async function loadSemaphores() {
  const now = Date.now();
  semaphores = (await api("GET", "/semaforo")).map((s) => ({ ...s, ocupantes: s.ocupantes.map((o) => ({ ...o, expires: now + o.ttl_restante * 1000 })) }));
  renderSemaphores();
}
function renderSemaphores() {
  $("#semaphores tbody").replaceChildren(...semaphores.map((s) =>
    el("tr", {}, el("td", { textContent: s.semaforo }), el("td", { textContent: `${s.ocupantes.length}/${s.limite}` }),
      el("td", {}, ...s.ocupantes.map((o) => el("div", {}, `${o.holder} `, code("#" + o.token), ` ${left(o.expires)} s`))),
      el("td", { textContent: s.fila }))));
}
// A leader's renovar writes no key, so no event tells of it: when a countdown
// runs out, ask the server, which knows whether the lease was renewed.
setInterval(() => {
  if (elections.some((e) => left(e.expires) === 0)) loadElections().catch(() => {});
  renderElections();
  renderSemaphores();
}, 1000);

// --- semaphores refreshed every second, not streamed: a browser opens at most
// 6 connections to one host over HTTP/1.1, and app.js's five /eventos streams
// already hold five of them; one more would leave no connection for fetch.
async function refresh() {
  await loadSemaphores().catch(() => {});
  setTimeout(refresh, 1000);
}
loadElections().catch(() => {});
refresh();
