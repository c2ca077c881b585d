/**
 * The dashboard's two pages, whole: styles and script inline (with the
 * response's CSP nonce), no external asset, no framework. Every value from
 * the store is put in the page with textContent, never as HTML: hostnames and
 * DUIDs are the devices' to choose.
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
 thead{display:none}
 table,tbody,tr,td{display:block;width:100%}
 tr{border-bottom:1px solid var(--line);padding:.5rem 0}
 tr:last-child{border-bottom:0}
 td{border:0;padding:.15rem 0;display:grid;grid-template-columns:8.5rem 1fr;gap:.5rem;align-items:start}
 td>.state{justify-self:start}
 td::before{content:attr(data-label);color:var(--dim);font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;padding-top:.1rem}
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
    agents.append(row);
  }
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
function connect() {
  const source = new EventSource('/dashboard/events');
  source.addEventListener('state', (m) => { $('#live').classList.add('on'); render(JSON.parse(m.data)); });
  source.onerror = () => { $('#live').classList.remove('on');
    // Closed for good (the session ended: the stream answered 401): back to the login page.
    if (source.readyState === EventSource.CLOSED) location.reload(); };
}
connect();
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function shell(nonce: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="color-scheme" content="dark">
<title>${escapeHtml(title)}</title>
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

export function dashboardPage(nonce: string, host: string): string {
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
<section id="devices"><h2>Devices</h2>
<table><thead><tr><th>Device</th><th>Address</th><th>State</th><th>Container</th><th>Container address</th><th>Agent</th><th>Last seen</th></tr></thead>
<tbody id="device-rows"></tbody></table>
<p id="no-devices" class="empty">No device holds a lease yet.</p>
</section>
<section id="agents"><h2>Agents</h2><div id="agent-list"></div></section>
<section id="events"><h2>Latest events</h2><ol id="event-list"></ol><p id="no-events" class="empty" hidden>No events yet.</p></section>
</main>
<script nonce="${nonce}">${SCRIPT}</script>`,
  );
}
