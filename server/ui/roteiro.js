// The guided tour ("Roteiro"): each step ticks itself when the dashboard sees it
// happen, in etcd's events (etcdapi:event) or in the cluster's state (etcdapi:cluster).
// The same tour, with the expected output of each step, is docs/oficina.md.
const $ = (sel) => document.querySelector(sel);
const base = location.origin;
const json = `-H 'Content-Type: application/json'`;

const steps = [
  {
    id: "config", title: "Mude uma configuração ao vivo",
    cmd: `curl -X PUT ${base}/config/limite ${json} -d '{"valor": 100}'`,
    why: "O painel recebe a mudança pelo watch do etcd (/eventos), sem recarregar nada.",
  },
  {
    id: "ttl", title: "Registre um serviço com TTL curto e espere ele expirar",
    cmd: `curl -X POST ${base}/servicos/registrar ${json} -d '{"nome":"pagamentos","endpoint":"http://10.0.0.5:8080","ttl":5}'`,
    why: "A instância vive num lease de 5 s: sem heartbeat, o etcd apaga a chave sozinho.",
  },
  {
    id: "lock", title: "Dois donos de um lock, com tokens crescentes",
    cmd: `curl -X POST ${base}/lock/relatorio ${json} -d '{"holder":"worker-a","ttl":5}'\ncurl -X POST ${base}/lock/relatorio ${json} -d '{"holder":"worker-b","aguardar":10}'`,
    why: "O segundo espera o lease do primeiro expirar e recebe um token maior. Fencing: se worker-a voltar de uma pausa achando que ainda tem o lock, o recurso protegido recusa o token antigo, menor que o último que viu.",
  },
  {
    id: "fencing", title: "Fencing: a escrita de um dono antigo é recusada",
    cmd: `token() { sed 's/.*"token":\\([0-9]*\\).*/\\1/'; }
a=$(curl -s -X POST ${base}/lock/fatura ${json} -d '{"holder":"worker-a","ttl":5}' | token)
b=$(curl -s -X POST ${base}/lock/fatura ${json} -d '{"holder":"worker-b","aguardar":10}' | token)
curl -X PUT ${base}/config/fatura ${json} -H "Etcdapi-Guarda: lock=fatura; token=$a" -d '{"valor":"de worker-a"}'   # 409
curl -X PUT ${base}/config/fatura ${json} -H "Etcdapi-Guarda: lock=fatura; token=$b" -d '{"valor":"de worker-b"}'   # 200`,
    why: "worker-a dorme além do TTL (uma pausa de GC, uma tampa de laptop) e volta achando que ainda tem o lock. Com Etcdapi-Guarda, o etcd confere o token na mesma transação da escrita: a de worker-a, com o token antigo, recebe 409 com token_atual; a de worker-b passa. A escrita recusada não chega ao etcd, por isso não aparece em Eventos: o 409 fica no seu terminal.",
  },
  {
    id: "election", title: "Eleja um líder",
    cmd: `curl -X POST ${base}/eleicao/agendador/candidatar ${json} -d '{"candidato":"worker-a","ttl":10}'`,
    why: "O candidato é uma chave em /election/ presa a um lease: quem chegou primeiro lidera até sair ou o lease expirar.",
  },
  {
    id: "failover", title: "Derrube o líder do cluster enquanto as escritas continuam", demo: true,
    cmd: `i=0; while true; do curl -s -o /dev/null -w "%{http_code} " -X PUT ${base}/config/contador ${json} -d "{\\"valor\\": $((i+=1))}"; sleep 0.2; done`,
    why: "Deixe o laço rodando e clique em “parar” no membro ★ líder. Os outros dois elegem um novo líder em cerca de um segundo e as escritas seguem.",
  },
  {
    id: "partition", title: "Isole o líder enquanto as escritas continuam, e reconecte", demo: true,
    cmd: `lider=$(curl -s ${base}/cluster | sed 's/.*"lider":"\\([^"]*\\)".*/\\1/')\ncurl -X POST ${base}/demo/membros/$lider/isolar\ncurl -X POST ${base}/demo/membros/$lider/reconectar`,
    why: "Com o laço de escritas rodando, clique em “isolar” no ★ líder: nenhuma mensagem raft passa entre ele e os outros. Ele deixa de liderar sozinho (check-quorum), a maioria elege outro e as escritas seguem; perguntado direto, o isolado responde 503 em vez de responder errado. Reconectado, volta como seguidor.",
  },
  {
    id: "quorum", title: "Perca o quórum e recupere", demo: true,
    cmd: `curl -X POST ${base}/demo/membros/n1/parar; curl -X POST ${base}/demo/membros/n2/parar\ncurl -i -X PUT ${base}/config/limite ${json} -d '{"valor": 1}'   # 503: sem quórum\ncurl -X POST ${base}/demo/membros/n1/iniciar`,
    why: "Com 2 de 3 membros parados não há maioria: o etcd recusa escritas (503) em vez de arriscar divergir. Um membro de volta e a maioria volta.",
  },
];

// Progress survives a reload of the page, for this cluster only.
let cluster = "";
let done = {};
const save = () => sessionStorage.setItem("etcdapi-roteiro", JSON.stringify({ cluster, done }));

function tick(id, seen) {
  if (done[id]) return;
  done[id] = seen;
  save();
  render();
}

function render() {
  $("#tour").replaceChildren(...steps.map((s) => {
    const li = document.createElement("li");
    li.dataset.step = s.id;
    li.className = done[s.id] ? "done" : s.demo && !demo ? "skip" : "";
    const title = document.createElement("strong");
    title.textContent = s.title;
    const pre = document.createElement("pre");
    pre.textContent = s.cmd;
    const copy = document.createElement("button");
    copy.className = "copy";
    copy.textContent = "copiar";
    copy.onclick = () => navigator.clipboard?.writeText(s.cmd);
    const why = document.createElement("div");
    why.className = "why";
    why.textContent = s.demo && !demo ? "Só no modo demo: rode `etcdapi demo` (ou `go run . demo`)." : s.why;
    li.append(title, " ", copy, pre, why);
    if (done[s.id]) {
      const seen = document.createElement("div");
      seen.className = "seen";
      seen.textContent = "✔ visto: " + done[s.id];
      li.append(seen);
    }
    return li;
  }));
  $("#tour-count").textContent = `(${Object.keys(done).length}/${steps.length})`;
}

// --- what the events show ---
const services = new Set(); // service keys seen put
const lockHolders = new Map(); // lock key -> {holder, revisao} of its last holder
const handedOver = new Map(); // resource -> {from, to, token}: its lock passed to a new holder
let lastRevision = 0;
let opened = 0; // the revision when the page opened: older events (the feed's history) tick nothing
window.addEventListener("etcdapi:event", ({ detail: ev }) => {
  lastRevision = Math.max(lastRevision, ev.revisao);
  if (ev.revisao <= opened) return;
  const put = ev.tipo === "put";
  if (put && ev.chave.startsWith("/config/app/")) {
    const key = ev.chave.slice(12);
    // A write to a resource after its lock changed hands. The page sees only
    // writes that reached etcd: a refused one (409) leaves no event.
    const h = handedOver.get(key);
    if (h) tick("fencing", `${key} escrito na revisão ${ev.revisao}, depois que o lock passou de ${h.from} para ${h.to}: com a guarda, só o token novo é aceito`);
    else tick("config", `${key} = ${JSON.stringify(ev.valor)} (revisão ${ev.revisao})`);
  }
  if (ev.chave.startsWith("/services/")) {
    if (put) services.add(ev.chave);
    else if (services.has(ev.chave)) tick("ttl", `${ev.chave} sumiu (revisão ${ev.revisao})`);
  }
  if (put && ev.chave.startsWith("/locks/")) {
    const prev = lockHolders.get(ev.chave);
    const holder = ev.valor?.holder;
    if (prev && prev.holder !== holder && ev.revisao > prev.revisao) {
      tick("lock", `${prev.holder} com token ${prev.revisao}, depois ${holder} com token ${ev.revisao}`);
      handedOver.set(ev.chave.slice(7), { from: `${prev.holder} (token ${prev.revisao})`, to: `${holder} (token ${ev.revisao})` });
    }
    lockHolders.set(ev.chave, { holder, revisao: ev.revisao });
  }
  if (put && ev.chave.startsWith("/election/")) {
    tick("election", `${ev.valor?.candidato ?? ev.chave} candidato em ${ev.chave.split("/")[2]} (revisão ${ev.revisao})`);
  }
  if (failover && ev.revisao > failover.revision) {
    tick("failover", `${failover.from} parou, ${failover.to} lidera, e a escrita da revisão ${ev.revisao} passou`);
  }
});

// --- what the cluster shows ---
let demo = false;
let leader = "";
let failover = null; // a new leader elected after the old one stopped, waiting for a write
let quorumLost = false;
let partition = null; // the leader isolated, a new one elected: waiting for it to come back as a follower
window.addEventListener("etcdapi:cluster", ({ detail: c }) => {
  if (!opened) opened = c.revisao;
  const id = c.membros.map((m) => m.id).sort().join(",");
  if (id !== cluster || demo !== c.demo) {
    const saved = JSON.parse(sessionStorage.getItem("etcdapi-roteiro") || "{}");
    cluster = id;
    done = saved.cluster === id ? saved.done : {};
    demo = c.demo;
    render(); // only on change: a render every poll would undo a selection of a command
  }
  const down = new Set(c.membros.filter((m) => m.estado !== "ativo").map((m) => m.nome));
  for (const p of c.procs || []) if (p.estado !== "ativo") down.add(p.nome);
  if (c.lider && leader && c.lider !== leader && down.has(leader)) {
    failover = { from: leader, to: c.lider, revision: Math.max(lastRevision, c.revisao) };
  }
  const state = new Map((c.procs || []).map((p) => [p.nome, p.estado]));
  if (!partition && c.lider && leader && c.lider !== leader && state.get(leader) === "isolado") {
    partition = { from: leader, to: c.lider };
  }
  if (partition && state.get(partition.from) === "ativo" && c.lider && c.lider !== partition.from) {
    tick("partition", `${partition.from} isolado, ${partition.to} eleito; ${partition.from} voltou como seguidor de ${c.lider}`);
    partition = null;
  }
  if (c.lider) leader = c.lider;
  const majority = Math.floor(c.membros.length / 2) + 1;
  if (!c.lider && c.membros.length - down.size < majority) quorumLost = true;
  if (quorumLost && c.lider && c.membros.length - down.size >= majority) {
    tick("quorum", `quórum perdido e recuperado; líder agora: ${c.lider}`);
    quorumLost = false;
  }
});

$("#tour-reset").addEventListener("click", () => { done = {}; save(); render(); });
render();
