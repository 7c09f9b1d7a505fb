// GET /status: one small static page, no framework. It polls /status.json every second for the live
// figures and draws the last minutes; the ID explorer below it uses the admin API with the token typed in
// (kept in the page's memory only) and the bid-time lookup, to show one ID's person, segments, caps and what
// a bid request with the chosen consent signals would get, and why.
import { createHash } from "node:crypto";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>audience lookup service — status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2733; background: #f6f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .6rem; }
  .tile { background: #fff; border: 1px solid #d8dee4; border-radius: 6px; padding: .6rem .8rem; }
  .tile .v { font-size: 1.4rem; font-weight: 600; }
  .tile .k { color: #57606a; font-size: .8rem; }
  canvas { background: #fff; border: 1px solid #d8dee4; border-radius: 6px; width: 100%; height: 160px; }
  form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; background: #fff; border: 1px solid #d8dee4; border-radius: 6px; padding: .8rem; }
  label { display: flex; flex-direction: column; font-size: .8rem; color: #57606a; }
  input, select, button { font: inherit; padding: .25rem .4rem; }
  table { border-collapse: collapse; background: #fff; margin-top: .5rem; }
  td, th { border: 1px solid #d8dee4; padding: .25rem .5rem; text-align: left; }
  .bad { color: #b42318; } .ok { color: #1a7f37; }
  pre { background: #fff; border: 1px solid #d8dee4; padding: .6rem; overflow: auto; }
</style>
</head>
<body>
<h1>audience lookup service</h1>
<div class="tiles">
  <div class="tile"><div class="v" id="rps">–</div><div class="k">requests/s (last 10 s)</div></div>
  <div class="tile"><div class="v" id="p50">–</div><div class="k">p50 latency, ms</div></div>
  <div class="tile"><div class="v" id="p99">–</div><div class="k">p99 latency, ms</div></div>
  <div class="tile"><div class="v" id="hit">–</div><div class="k">cache hit ratio</div></div>
  <div class="tile"><div class="v" id="degraded">–</div><div class="k">degraded answers/s</div></div>
  <div class="tile"><div class="v" id="shed">–</div><div class="k">shed requests/s</div></div>
  <div class="tile"><div class="v" id="store">–</div><div class="k">store</div></div>
  <div class="tile"><div class="v" id="total">–</div><div class="k">requests in all</div></div>
</div>
<h2>Requests per second, last 2 minutes</h2>
<canvas id="chart" width="1200" height="160"></canvas>

<h2>ID explorer</h2>
<form id="explore">
  <label>admin token<input id="token" type="password" autocomplete="off" size="28"></label>
  <label>type<input id="type" value="bu" size="10"></label>
  <label>id<input id="id" size="40"></label>
  <label>consent
    <select id="consent">
      <option value="none">no signals</option>
      <option value="coppa">COPPA</option>
      <option value="gdpr-none">GDPR, no TC string</option>
      <option value="usp-optout">US privacy opt-out (1YYN)</option>
      <option value="lmt">limit ad tracking</option>
    </select>
  </label>
  <button id="go" type="submit">Look up</button>
</form>
<div id="result"></div>

<script>
const $ = (id) => document.getElementById(id);
let total = 0;
function fmt(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d); }
async function refresh() {
  try {
    const s = await (await fetch("/status.json", { cache: "no-store" })).json();
    const last = s.live.seconds.slice(-10);
    const n = last.reduce((a, x) => a + x.requests, 0);
    $("rps").textContent = fmt(n / 10, 1);
    const withLat = last.filter((x) => x.p50 !== null);
    const pick = (k) => (withLat.length ? withLat.reduce((a, x) => Math.max(a, x[k]), 0) : null);
    $("p50").textContent = fmt(pick("p50"), 2);
    $("p99").textContent = fmt(pick("p99"), 2);
    const hits = last.filter((x) => x.hitRatio !== null);
    $("hit").textContent = hits.length ? fmt(hits.reduce((a, x) => a + x.hitRatio, 0) / hits.length, 3) : "–";
    $("degraded").textContent = fmt(last.reduce((a, x) => a + x.degraded, 0) / 10, 1);
    $("shed").textContent = fmt(last.reduce((a, x) => a + x.shed, 0) / 10, 1);
    $("store").textContent = s.store.kind + (s.store.ready ? "" : " (unready)") + (s.breaker.state === "closed" ? "" : " · breaker " + s.breaker.state);
    $("store").className = "v " + (s.store.ready && s.breaker.state === "closed" ? "ok" : "bad");
    total = s.requests;
    $("total").textContent = String(total);
    draw(s.live.seconds);
  } catch (e) {
    $("store").textContent = "unreachable";
    $("store").className = "v bad";
  }
}
function draw(seconds) {
  const c = $("chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...seconds.map((x) => x.requests));
  const w = c.width / seconds.length;
  seconds.forEach((x, i) => {
    const h = (x.requests / max) * (c.height - 20);
    g.fillStyle = x.degraded > 0 ? "#d29922" : "#2f81f7";
    g.fillRect(i * w, c.height - h, Math.max(1, w - 1), h);
  });
  g.fillStyle = "#57606a";
  g.fillText(String(max) + " req/s", 4, 12);
}
setInterval(refresh, 1000);
refresh();

const CONSENT = {
  none: {},
  coppa: { regs: { coppa: 1 } },
  "gdpr-none": { regs: { gdpr: 1 } },
  "usp-optout": { regs: { us_privacy: "1YYN" } },
  lmt: { device: { lmt: 1 } },
};
function bidRequest(type, id, consent) {
  const req = { id: "explorer", imp: [{ id: "1", banner: { w: 300, h: 250 } }], ...JSON.parse(JSON.stringify(CONSENT[consent])) };
  req.user = req.user || {};
  req.device = req.device || {};
  if (type === "bu") req.user.buyeruid = id;
  else if (type === "ifa") req.device.ifa = id;
  else if (type.startsWith("eid:")) req.user.eids = [{ source: type.slice(4), uids: [{ id }] }];
  return req;
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }
$("explore").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("token").value, type = $("type").value.trim(), id = $("id").value.trim(), consent = $("consent").value;
  const auth = { authorization: "Bearer " + token };
  const out = $("result");
  out.textContent = "…";
  const user = await fetch("/v1/admin/users/" + encodeURIComponent(type) + "/" + encodeURIComponent(id), { headers: auth });
  if (user.status !== 200) { out.innerHTML = '<p class="bad">' + user.status + ": " + esc((await user.json()).error.message) + "</p>"; return; }
  const data = await user.json();
  const tax = await fetch("/v1/admin/taxonomy", { headers: auth }).then((r) => (r.ok ? r.json() : { segments: [] }));
  const defs = new Map(tax.segments.map((s) => [s.id, s]));
  const caps = await fetch("/v1/admin/caps", { headers: auth }).then((r) => (r.ok ? r.json() : { rules: [] }));
  const campaigns = [...new Set(caps.rules.map((r) => r.campaign))];
  const compact = { ids: [{ type, id }] };
  if (campaigns.length) compact.campaigns = campaigns;
  const person = await (await fetch("/v1/lookup", { method: "POST", body: JSON.stringify(compact) })).json();
  const bid = type === "hem" || type.startsWith("xu:") ? null : await (await fetch("/v1/lookup", { method: "POST", body: JSON.stringify(bidRequest(type, id, consent)) })).json();
  const rows = data.memberships.map((m) => {
    const d = defs.get(m.segment) || {};
    const exp = m.expiresAt === 0 ? "never" : new Date(m.expiresAt * 1000).toISOString();
    return "<tr><td>" + esc(m.segment) + "</td><td>" + esc(d.name || "?") + "</td><td>" + esc(d.party || "?") + "</td><td>" + esc(d.provider || "?") + "</td><td>" + exp + "</td><td>" + (m.active ? "yes" : "no" + (d.sensitive ? " (sensitive)" : "")) + "</td></tr>";
  }).join("");
  out.innerHTML =
    "<p>" + esc(data.key) + (data.optedOut ? ' <b class="bad">opted out</b>' : "") + "</p>" +
    '<table id="segments"><tr><th>segment</th><th>name</th><th>party</th><th>provider</th><th>expires</th><th>active</th></tr>' + rows + "</table>" +
    "<h2>Person</h2><p>" + (data.person.length ? data.person.map((p) => esc(p.key) + " (" + p.confidence + "): " + esc(p.segments.join(", "))).join("<br>") : "not linked") + "</p>" +
    "<h2>Caps</h2><pre>" + esc(JSON.stringify({ capped: person.capped, remaining: person.remaining || {} }, null, 1)) + "</pre>" +
    "<h2>A bid request with these signals gets</h2><pre id=\\"bid\\">" + esc(bid === null ? "(this type of ID does not travel in a bid request)" : JSON.stringify({ segments: bid.segments, withheld: bid.withheld, degraded: bid.degraded }, null, 1)) + "</pre>";
});
</script>
</body>
</html>
`;

/** CSP source of an inline element's text: its SHA-256, so that only this very script or style may run. */
function inlineHash(tag: "script" | "style"): string {
  const text = STATUS_PAGE_HTML.split(`<${tag}>`)[1]?.split(`</${tag}>`)[0];
  if (text === undefined) throw new Error(`status page has no inline <${tag}>`);
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

/**
 * The page's headers. The CSP allows nothing but its own inline script and style (by hash, not
 * 'unsafe-inline': an injected script would not run even if the escaping missed a spot) and requests to
 * this origin (status.json, the admin API, lookups); the page may not be framed (clickjacking: the explorer
 * holds an admin token), its type may not be sniffed, and it sends no Referer.
 */
export const STATUS_PAGE_HEADERS: readonly (readonly [string, string])[] = [
  [
    "content-security-policy",
    [
      "default-src 'none'",
      `script-src ${inlineHash("script")}`,
      `style-src ${inlineHash("style")}`,
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  ],
  ["x-frame-options", "DENY"],
  ["x-content-type-options", "nosniff"],
  ["referrer-policy", "no-referrer"],
  ["cache-control", "no-store"],
];
