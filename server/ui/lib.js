// The dashboard's helpers, shared by app.js and coord.js.
export const $ = (sel) => document.querySelector(sel);
export let token = sessionStorage.getItem("etcdapi-token") || "";

// api sends a request with the token, asking for it once when the server
// answers 401, and returns the JSON answer, or throws its erro.
export async function api(method, path, body, headers = {}) {
  const opts = { method, headers: { ...headers } };
  if (token) opts.headers.Authorization = "Bearer " + token;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const sent = token;
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    if (token === sent) { // not asked already for another request meanwhile
      token = prompt("Token da API (API_TOKEN):") || "";
      sessionStorage.setItem("etcdapi-token", token);
    }
    return api(method, path, body, headers);
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(data?.erro ? data.erro + (data.campos ? ": " + Object.entries(data.campos).map(([k, v]) => `${k} ${v}`).join("; ") : "") : resp.statusText);
  return data;
}

export const el = (tag, { dataset, ...props } = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
};
export const json = (v) => el("code", { textContent: JSON.stringify(v) });
export const left = (t) => Math.max(0, Math.ceil((t - Date.now()) / 1000));
export const ttlCell = (t) => el("td", { className: "ttl" + (left(t) <= 5 ? " low" : ""), textContent: left(t) + " s" });
