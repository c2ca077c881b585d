import type { AgentView as Agent, BanView, ClientDetail, ClientView as Client, EventView, InstanceView as Instance, KeptView, LeadershipView, ServerView as Server } from '@unionize/protocol';
import type { SetAside } from './rejected.js';
import { age, formatTable, localTime } from './table.js';

const bare = (cidr: string | undefined) => cidr?.split('/')[0];

export function clientsTable(clients: readonly Client[], now = Date.now()): string {
  return formatTable(
    ['CLIENT', 'STATE', 'HOSTNAME', 'DEVICE ADDRESS', 'CONTAINER', 'CONTAINER ADDRESS', 'AGENT', 'SEEN'],
    clients.map((c) => [c.id, c.state, c.hostname, c.address, c.instance?.containerName, bare(c.instance?.address), c.instance?.agent, age(c.lastSeen, now)]),
  );
}

export function instancesTable(instances: readonly Instance[], now = Date.now()): string {
  return formatTable(
    ['CONTAINER', 'AGENT', 'ADDRESS', 'MAC', 'IMAGE', 'CLIENT', 'AGE'],
    instances.map((i) => [i.containerName, i.agent, i.address, i.mac, i.image, i.clientId, age(i.createdAt, now)]),
  );
}

export function keptTable(kept: readonly KeptView[], now = Date.now()): string {
  const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return formatTable(
    ['IMAGE', 'AGENT', 'HOSTNAME', 'PROFILE', 'SIZE', 'AGE', 'EXPIRES'],
    kept.map((k) => [k.image, k.agent, k.hostname || '-', k.profile, mib(k.sizeBytes), age(k.createdAt, now), k.expiresAt ? localTime(k.expiresAt) : 'never']),
  );
}

export function agentsTable(agents: readonly Agent[], now = Date.now()): string {
  const health = (a: Agent) => (a.healthy === null ? 'unknown' : a.healthy ? 'healthy' : 'UNHEALTHY');
  return formatTable(['AGENT', 'HEALTH', 'CONTAINERS', 'CHECKED', 'POOLS'], agents.map((a) => [a.name, health(a), a.instances, age(a.checkedAt, now), poolsCell(a)]));
}

/** Each warm pool as `NAME ready/size, claims C, misses M`; `-` when the agent keeps none or has not said. */
function poolsCell(agent: Agent): string {
  if (!agent.pools || agent.pools.length === 0) return '-';
  return agent.pools.map((p) => `${p.name} ${p.ready}/${p.size}${p.starting ? '+1' : ''}, claims ${p.claims}, misses ${p.misses}`).join('; ');
}

/** One orchestrator as `orchestratorctl status` saw it: its GET /v1/leadership, or why it could not be asked. */
export type OrchestratorStatus = { url: string } & (LeadershipView | { unreachable: string });

export function statusTable(rows: readonly OrchestratorStatus[]): string {
  const table = formatTable(['URL', 'NAME', 'ROLE'], rows.map((r) => ('role' in r ? [r.url, r.name, r.role] : [r.url, '-', `unreachable: ${r.unreachable}`])));
  const leader = rows.map((r) => ('role' in r ? r.leader : null)).find((l) => l !== null);
  const alone = rows.some((r) => 'role' in r && r.role === 'single');
  const line = leader
    ? `leader: ${leader.name}${leader.url ? ` (${leader.url})` : ''}, epoch ${leader.epoch}, since ${localTime(leader.since)}`
    : alone ? 'leader: none needed (one orchestrator, memory or SQLite store)' : 'leader: none';
  return `${table}\n${line}`;
}

export function serversTable(servers: readonly Server[], now = Date.now()): string {
  return formatTable(['SERVER', 'ROLE', 'FIRST SEEN', 'LAST SEEN'], servers.map((s) => [s.name, s.role, localTime(s.firstSeen), age(s.lastSeen, now)]));
}

export const EVENT_HEADERS = ['RECEIVED', 'ACTION', 'ADDRESS', 'CLIENT', 'OUTCOME'] as const;

export function eventRow(e: EventView): unknown[] {
  return [localTime(e.receivedAt), e.action, e.address, e.clientId, e.outcome ?? 'queued'];
}

export function eventsTable(events: readonly EventView[]): string {
  return formatTable(EVENT_HEADERS, events.map(eventRow));
}

export function clientDetail(c: ClientDetail, now = Date.now()): string {
  const fields: Array<[string, unknown]> = [
    ['client', c.id],
    ['state', `${c.state} (wants ${c.desired === 'running' ? 'a running container' : 'none'})`],
    ['reason', c.stateReason],
    ['hostname', c.hostname],
    ['device address', c.address],
    ['DUID', c.duid],
    ['IAID', c.iaid],
    ['MAC', c.mac],
    ['DHCP server', `${c.server} (${c.role})`],
    ['lease expires', c.expiresAt ? `${localTime(c.expiresAt)} (${age(c.expiresAt, now)})` : 'never / not said'],
    ['first seen', localTime(c.firstSeen)],
    ['last seen', `${localTime(c.lastSeen)} (${age(c.lastSeen, now)} ago)`],
    ['container', c.instance ? `${c.instance.containerName} on ${c.instance.agent}` : null],
    ['container address', c.instance?.address],
    ['container MAC', c.instance?.mac],
    ['image', c.instance?.image],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  const head = fields.map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined || v === '' ? '-' : String(v)}`).join('\n');
  if (c.transitions.length === 0) return head;
  const transitions = formatTable(['AT', 'FROM', 'TO', 'REASON'], c.transitions.map((t) => [localTime(t.at), t.from, t.to, t.reason]));
  return `${head}\n\ntransitions (newest first):\n${transitions}`;
}

/**
 * Find the one client an operator means: its id or an id prefix (4+ hex),
 * a hostname, a device address, a DUID or a container name. Several matches
 * that are not all gone: the ones still here win; still several: an error
 * listing them.
 */
export function findClient(query: string, clients: readonly Client[]): Client | { ambiguous: Client[] } | undefined {
  const q = query.trim().toLowerCase();
  const exact = clients.find((c) => c.id === q);
  if (exact) return exact;
  const matches = clients.filter(
    (c) =>
      (q.length >= 4 && /^[0-9a-f]+$/.test(q) && c.id.startsWith(q)) ||
      c.hostname?.toLowerCase() === q ||
      c.address.toLowerCase() === q ||
      c.duid === q ||
      c.instance?.containerName === q,
  );
  if (matches.length <= 1) return matches[0];
  const live = matches.filter((c) => c.state !== 'gone');
  if (live.length === 1) return live[0];
  return { ambiguous: live.length > 0 ? live : matches };
}

/** `orchestratorctl hook rejected`: what the hook's flusher set aside, with why. */
export function rejectedTable(entries: readonly SetAside[]): string {
  return formatTable(
    ['NAME', 'SET ASIDE', 'SEEN', 'ACTION', 'DUID', 'IAID', 'ADDRESS', 'HOSTNAME', 'REASON'],
    entries.map((r) => [
      r.name, localTime(r.setAsideAt), localTime(r.event?.seenAt), r.event?.action, r.event?.duid, r.event?.iaid, r.event?.address, r.event?.hostname,
      r.reason ?? r.problem,
    ]),
  );
}

export function bansTable(bans: readonly BanView[], now = Date.now()): string {
  return formatTable(['DEVICE', 'BY', 'SINCE', 'ENDS'], bans.map((b) => [b.target, b.kind.toUpperCase(), localTime(b.since), b.until ? `${localTime(b.until)} (${age(b.until, now)})` : 'when unbanned']));
}
