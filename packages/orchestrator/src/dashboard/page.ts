import type { ChartAssets } from './assets.js';

/**
 * The dashboard's two pages, whole: styles and script inline (with the
 * response's CSP nonce), no framework; the one asset is the chart library,
 * uPlot, served by the orchestrator itself (nonce and Subresource Integrity
 * on its tags). Every value from the store is put in the page with
 * textContent, never as HTML: hostnames and DUIDs are the devices' to choose.
 */

const STYLE = `
:root{--bg:#0f1419;--panel:#172029;--line:#263340;--text:#e6edf3;--dim:#8b9bab;--accent:#4fb3ff;
--ready:#3fb950;--provisioning:#d29922;--pending:#8b9bab;--deprovisioning:#a371f7;--gone:#5c6b7a;--failed:#f85149}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.6rem 1rem;padding:.8rem 1.2rem;border-bottom:1px solid var(--line);background:var(--panel);position:sticky;top:0;z-index:1}
h1{font-size:1.05rem;margin:0;font-weight:600;letter-spacing:.01em}
h1 small{color:var(--dim);font-weight:400}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.08em;color:var(--dim);margin:0 0 .6rem}
main{padding:1rem 1.2rem;display:grid;gap:1.2rem;grid-template-columns:minmax(0,1fr) 22rem;max-width:1400px;margin:0 auto}
section{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:1rem}
#devices{grid-row:span 2}
#charts{grid-column:1/-1;display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,26rem),1fr));gap:1rem 1.6rem}
figure{margin:0;min-width:0}
figcaption{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:.2rem .8rem;margin-bottom:.3rem}
figcaption h2{margin:0}
.keys{display:flex;flex-wrap:wrap;gap:.2rem .9rem;font-size:.85rem;color:var(--dim)}
.key b{color:var(--text);font-weight:600}
.key i{display:inline-block;width:.75rem;height:.2rem;border-radius:2px;margin-right:.35rem;vertical-align:middle;background:var(--dim)}
.key.devices i{background:#4fb3ff;height:.3rem}.key.containers i{background:#3fb950}.key.p50 i{background:#4fb3ff}.key.p95 i{background:#d29922}
.chart{min-width:0;height:170px}
.chart .uplot{font-family:inherit}
.chart-off{color:var(--dim);padding:1rem .2rem}
.live{display:inline-flex;align-items:center;gap:.4rem;color:var(--dim);font-size:.85rem}
.dot{width:.6rem;height:.6rem;border-radius:50%;background:var(--failed)}
.live.on .dot{background:var(--ready);box-shadow:0 0 0 3px rgba(63,185,80,.2)}
.chips{display:flex;flex-wrap:wrap;gap:.4rem;margin-left:auto}
.chip{border:1px solid var(--line);border-radius:999px;padding:.15rem .6rem;font-size:.8rem;color:var(--dim)}
.chip b{color:var(--text);font-weight:600}
form.logout{margin:0}
button{background:transparent;color:var(--dim);border:1px solid var(--line);border-radius:6px;padding:.25rem .6rem;font:inherit;cursor:pointer}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-weight:500;color:var(--dim);font-size:.75rem;text-transform:uppercase;letter-spacing:.05em;padding:.4rem .5rem;border-bottom:1px solid var(--line)}
td{padding:.5rem;border-bottom:1px solid var(--line);vertical-align:top}
tr:last-child td{border-bottom:0}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.82rem;overflow-wrap:anywhere}
.dim{color:var(--dim)}
.nowrap{white-space:nowrap}
.state{display:inline-block;border-radius:999px;padding:.05rem .55rem;font-size:.78rem;font-weight:600;color:#0f1419;background:var(--pending)}
.state.ready{background:var(--ready)}.state.provisioning{background:var(--provisioning)}.state.deprovisioning{background:var(--deprovisioning)}
.state.gone{background:var(--gone);color:var(--text)}.state.failed{background:var(--failed)}
tr.gone{opacity:.55}
tr.fresh{animation:fresh 2s ease-out}
@keyframes fresh{from{background:rgba(79,179,255,.25)}to{background:transparent}}
.empty{color:var(--dim);padding:1.5rem .5rem;text-align:center}
.agent{display:grid;grid-template-columns:auto 1fr auto;gap:.2rem .6rem;align-items:center;padding:.5rem 0;border-bottom:1px solid var(--line)}
.agent:last-child{border-bottom:0}
.bar{grid-column:1/-1;height:.4rem;background:var(--line);border-radius:999px;overflow:hidden}
.bar i{display:block;height:100%;background:var(--accent)}
ol{list-style:none;margin:0;padding:0;max-height:28rem;overflow:auto}
li{padding:.4rem 0;border-bottom:1px solid var(--line);display:grid;grid-template-columns:4.5rem 1fr;gap:.1rem .5rem}
li:last-child{border-bottom:0}
.act{font-weight:600}.act.add{color:var(--ready)}.act.del{color:var(--failed)}.act.old{color:var(--accent)}
@media (max-width:900px){
 main{grid-template-columns:1fr;padding:.7rem}
 #devices{grid-row:auto}
 #devices thead{display:none}
 #devices table,#devices tbody,#devices tr,#devices td{display:block;width:100%}
 #devices tr{border-bottom:1px solid var(--line);padding:.5rem 0}
 #devices tr:last-child{border-bottom:0}
 #devices td{border:0;padding:.15rem 0;display:grid;grid-template-columns:8.5rem 1fr;gap:.5rem;align-items:start}
 #devices td>.state{justify-self:start}
 #devices td::before{content:attr(data-label);color:var(--dim);font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;padding-top:.1rem}
 .chips{margin-left:0;width:100%}
}
.login{min-height:100vh;display:grid;place-items:center;padding:1rem}
.login form{background:var(--panel);border:1px solid var(--line);border-radius:12px;padding:1.5rem;width:100%;max-width:22rem;display:grid;gap:.8rem}
.login input{width:100%;padding:.6rem;border-radius:6px;border:1px solid var(--line);background:var(--bg);color:var(--text);font:inherit}
.login button{background:var(--accent);color:#0f1419;border:0;padding:.6rem;font-weight:600}
.error{color:var(--failed);margin:0}
`;

const SCRIPT = `
const $ = (s) => document.querySelector(s);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text != null) e.textContent = String(text); if (cls) e.className = cls; return e; };
const ago = (iso) => { if (!iso) return '-'; const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? s + 's ago' : s < 3600 ? Math.floor(s / 60) + 'm ago' : Math.floor(s / 3600) + 'h ago'; };
const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
// Long IPv6 addresses and DUIDs may break after a colon, not inside a group.
const breakable = (text, cls) => { const e = el('span', null, cls); const parts = String(text).split(':');
  parts.forEach((p, i) => { e.append(p + (i < parts.length - 1 ? ':' : '')); if (i < parts.length - 1) e.append(document.createElement('wbr')); }); return e; };
let known = new Set();
let first = true;
function cell(tr, label, value, cls) { const td = el('td', null, cls); td.dataset.label = label;
  if (value instanceof Node) td.append(value); else td.textContent = value == null || value === '' ? '-' : String(value); tr.append(td); return td; }
function render(s) {
  const chips = $('#chips'); chips.replaceChildren();
  for (const [state, n] of Object.entries(s.counts)) { if (!n && state !== 'ready') continue; const c = el('span', null, 'chip'); c.append(el('b', n), ' ' + state); chips.append(c); }
  if (s.queued) { const c = el('span', null, 'chip'); c.append(el('b', s.queued), ' queued'); chips.append(c); }
  if (s.leader) { const c = el('span', null, 'chip'); c.title = 'this orchestrator leads its pair; the other stands by'; c.append('leader ', el('b', s.leader.name), ' \u00b7 epoch ' + s.leader.epoch); chips.append(c); }
  const body = $('#device-rows'); body.replaceChildren();
  const seen = new Set();
  for (const d of s.devices) {
    const tr = el('tr'); tr.dataset.client = d.id; tr.className = d.state === 'gone' ? 'gone' : '';
    if (!first && !known.has(d.id)) tr.classList.add('fresh');
    seen.add(d.id);
    const name = el('div'); name.append(el('div', d.hostname || '(no name)')); name.append(breakable(d.duid, 'mono dim'));
    cell(tr, 'device', name);
    cell(tr, 'address', breakable(d.address), 'mono');
    const st = el('span', d.state, 'state ' + d.state); st.title = d.stateReason; cell(tr, 'state', st);
    cell(tr, 'container', d.container, 'mono nowrap');
    cell(tr, 'container address', d.containerAddress ? breakable(d.containerAddress) : null, 'mono');
    cell(tr, 'agent', d.agent);
    cell(tr, 'last seen', ago(d.lastSeen), 'dim');
    body.append(tr);
  }
  known = seen; first = false;
  $('#no-devices').hidden = s.devices.length > 0;
  const agents = $('#agent-list'); agents.replaceChildren();
  const most = Math.max(1, ...s.agents.map((a) => a.instances));
  for (const a of s.agents) {
    const row = el('div', null, 'agent'); row.dataset.agent = a.name;
    row.append(el('span', a.healthy === null ? '…' : a.healthy ? '●' : '●', a.healthy ? 'ok' : 'dim'));
    row.firstChild.style.color = a.healthy === null ? 'var(--dim)' : a.healthy ? 'var(--ready)' : 'var(--failed)';
    row.append(el('b', a.name)); row.append(el('span', a.instances + (a.instances === 1 ? ' container' : ' containers'), 'dim'));
    const bar = el('div', null, 'bar'); const fill = el('i'); fill.style.width = (100 * a.instances / most) + '%'; bar.append(fill); row.append(bar);
    for (const p of a.pools) row.append(el('span', 'pool ' + p.name + ' ' + p.ready + '/' + p.size + ' ready, ' + p.claims + ' claims, ' + p.misses + ' misses', 'dim'));
    agents.append(row);
  }
  const bans = $('#ban-list'); bans.replaceChildren();
  for (const b of s.bans) {
    const li = el('li'); li.append(el('span', b.kind.toUpperCase(), 'dim'), ' ', el('span', b.target, 'mono'), ' ', el('span', b.until ? 'until ' + time(b.until) : 'until unbanned', 'dim'));
    bans.append(li);
  }
  $('#bans').hidden = s.bans.length === 0;
  const kept = $('#kept-list'); kept.replaceChildren();
  for (const k of s.kept) {
    const li = el('li');
    li.append(el('span', k.hostname || k.clientId.slice(0, 12), 'mono'), ' ', el('span', k.profile + ' on ' + k.agent + ', ' + (k.sizeBytes / 1048576).toFixed(1) + ' MB, ' + time(k.createdAt) + (k.expiresAt ? ', until ' + time(k.expiresAt) : ''), 'dim'));
    kept.append(li);
  }
  $('#kept').hidden = s.kept.length === 0;
  const events = $('#event-list'); events.replaceChildren();
  for (const e of s.events) {
    const li = el('li');
    li.append(el('span', time(e.receivedAt), 'dim mono'));
    const what = el('span'); what.append(el('span', e.action, 'act ' + e.action), ' ', el('span', e.hostname || e.address, e.hostname ? '' : 'mono'));
    li.append(what); li.append(el('span')); li.append(el('span', e.outcome || 'queued', 'dim'));
    events.append(li);
  }
  $('#no-events').hidden = s.events.length > 0;
  $('#updated').textContent = 'updated ' + time(s.generatedAt);
}
// Charts (uPlot, a global from /dashboard/assets/): the last hour, one point a minute, from s.series.
const COLORS = { devices: '#4fb3ff', containers: '#3fb950', p50: '#4fb3ff', p95: '#d29922' };
const hm = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const secs = (v) => v == null ? '-' : v < 10 ? v.toFixed(1) + ' s' : Math.round(v) + ' s';
const lastKnown = (a) => { for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return i; return -1; };
const charts = {};
let series = null;
// Points only where a line cannot show the value: a minute with no known minute either side.
const isolated = (u, i) => { const d = u.data[i]; const out = [];
  for (let k = 0; k < d.length; k++) if (d[k] != null && d[k - 1] == null && d[k + 1] == null) out.push(k); return out; };
function makeChart(box, lines, yMin, yValue, yIncrs, onCursor) {
  const axis = { stroke: '#8b9bab', font: '11px system-ui,sans-serif', grid: { stroke: '#263340', width: 1 }, ticks: { stroke: '#263340', width: 1, size: 4 } };
  const size = () => ({ width: Math.max(160, box.clientWidth), height: box.clientHeight || 170 });
  const chart = new uPlot({
    ...size(), legend: { show: false }, cursor: { drag: { x: false, y: false, setScale: false } },
    // Half a minute either side: the first and the current minute's points are drawn whole.
    scales: { x: { time: true, range: (u, lo, hi) => [lo - 30, hi + 30] }, y: { range: (u, lo, hi) => [0, Math.max(yMin, (hi || 0) * 1.15)] } },
    axes: [{ ...axis, size: 30, space: 56, incrs: [60, 300, 600, 900, 1800, 3600], values: (u, ticks) => ticks.map(hm) },
      { ...axis, size: 48, incrs: yIncrs, values: (u, ticks) => ticks.map(yValue) }],
    series: [{}, ...lines.map((l) => ({ spanGaps: false, ...l, points: { show: true, size: l.pointSize, fill: l.stroke, stroke: l.stroke, filter: isolated } }))],
    hooks: { setCursor: [(u) => onCursor(u.cursor.idx)] },
  }, [[], ...lines.map(() => [])], box);
  new ResizeObserver(() => chart.setSize(size())).observe(box);
  return chart;
}
function fleetKeys(i) {
  if (!series) return;
  const at = i == null ? lastKnown(series.devices) : i;
  $('#now-devices').textContent = at < 0 || series.devices[at] == null ? '-' : series.devices[at];
  $('#now-containers').textContent = at < 0 || series.containers[at] == null ? '-' : series.containers[at];
}
function latencyKeys(i) {
  if (!series) return;
  const l = series.leaseToReady;
  const at = i == null ? lastKnown(l.p50) : i;
  $('#now-p50').textContent = at < 0 ? '-' : secs(l.p50[at]);
  $('#now-p95').textContent = at < 0 ? '-' : secs(l.p95[at]);
  $('#now-ready').textContent = at < 0 ? 'none ready in the last hour' : '· ' + l.count[at] + ' ready at ' + hm(series.t[at]);
}
function drawCharts(s) {
  if (!s) return;
  if (typeof uPlot !== 'function') {
    for (const box of document.querySelectorAll('.chart')) if (!box.firstChild) box.append(el('p', 'The chart script did not load.', 'chart-off'));
    return;
  }
  series = s;
  charts.fleet ??= makeChart($('#chart-fleet'), [
    // Devices under containers, wider: where every device has its container, a green line in a blue band.
    { label: 'devices', stroke: COLORS.devices, width: 4, fill: 'rgba(79,179,255,.10)', pointSize: 10 },
    { label: 'containers', stroke: COLORS.containers, width: 2, pointSize: 5 },
  ], 4, (v) => String(v), [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000], fleetKeys);
  charts.latency ??= makeChart($('#chart-latency'), [
    // p50 under p95, wider: a minute with one lease has both the same.
    { label: 'p50', stroke: COLORS.p50, width: 4, pointSize: 10 },
    { label: 'p95', stroke: COLORS.p95, width: 2, pointSize: 6 },
  ], 1, (v) => v + ' s', undefined, latencyKeys);
  charts.fleet.setData([s.t, s.devices, s.containers]);
  charts.latency.setData([s.t, s.leaseToReady.p50, s.leaseToReady.p95]);
  fleetKeys(charts.fleet.cursor.idx);
  latencyKeys(charts.latency.cursor.idx);
}
function connect() {
  const source = new EventSource('/dashboard/events');
  source.addEventListener('state', (m) => { $('#live').classList.add('on'); const s = JSON.parse(m.data); render(s);
    // A chart that cannot draw must not stop the tables.
    try { drawCharts(s.series); } catch (e) { console.error('dashboard charts:', e); } });
  source.onerror = () => { $('#live').classList.remove('on');
    // Closed for good (the session ended: the stream answered 401): back to the login page.
    if (source.readyState === EventSource.CLOSED) location.reload(); };
}
connect();
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function shell(nonce: string, title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="color-scheme" content="dark">
<title>${escapeHtml(title)}</title>${head}
<style nonce="${nonce}">${STYLE}</style>
</head><body>${body}</body></html>`;
}

export function loginPage(nonce: string, error?: string): string {
  return shell(
    nonce,
    'unionize · sign in',
    `<div class="login"><form method="post" action="/dashboard/login">
<h1>unionize <small>orchestrator</small></h1>
<label for="token" class="dim">Operator token (the content of <span class="mono">[dashboard] token_file</span>)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<button type="submit">Sign in</button>
</form></div>`,
  );
}

/** `assetBase`: where the orchestrator serves `assets` (/dashboard/assets). */
export function dashboardPage(nonce: string, host: string, assets: ChartAssets, assetBase: string): string {
  const { script, style } = assets;
  return shell(
    nonce,
    'unionize · dashboard',
    `<header>
<h1>unionize <small>${escapeHtml(host)}</small></h1>
<span id="live" class="live"><span class="dot"></span><span id="updated">connecting…</span></span>
<div id="chips" class="chips"></div>
<form class="logout" method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form>
</header>
<main>
<section id="charts">
<figure id="fleet"><figcaption><h2>Devices &amp; containers · last hour</h2>
<span class="keys"><span class="key devices"><i></i>devices <b id="now-devices">-</b></span><span class="key containers"><i></i>containers <b id="now-containers">-</b></span></span></figcaption>
<div id="chart-fleet" class="chart"></div></figure>
<figure id="latency"><figcaption><h2>Lease → ready · per minute</h2>
<span class="keys"><span class="key p50"><i></i>p50 <b id="now-p50">-</b></span><span class="key p95"><i></i>p95 <b id="now-p95">-</b></span><span id="now-ready"></span></span></figcaption>
<div id="chart-latency" class="chart"></div></figure>
</section>
<section id="devices"><h2>Devices</h2>
<table><thead><tr><th>Device</th><th>Address</th><th>State</th><th>Container</th><th>Container address</th><th>Agent</th><th>Last seen</th></tr></thead>
<tbody id="device-rows"></tbody></table>
<p id="no-devices" class="empty">No device holds a lease yet.</p>
</section>
<section id="agents"><h2>Agents</h2><div id="agent-list"></div></section>
<section id="bans" hidden><h2>Banned devices</h2><ul id="ban-list"></ul></section>
<section id="kept" hidden><h2>Kept containers</h2><ul id="kept-list"></ul></section>
<section id="events"><h2>Latest events</h2><ol id="event-list"></ol><p id="no-events" class="empty" hidden>No events yet.</p></section>
</main>
<script nonce="${nonce}" src="${assetBase}/${script.name}" integrity="${script.integrity}"></script>
<script nonce="${nonce}">${SCRIPT}</script>`,
    `\n<link rel="stylesheet" nonce="${nonce}" href="${assetBase}/${style.name}" integrity="${style.integrity}">`,
  );
}
