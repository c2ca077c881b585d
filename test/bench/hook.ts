import { signRequest } from '@unionize/protocol';
import type { Lab } from '../lab/lab.js';
import { inNs } from '../lab/netns.js';
import type { OrchestratorApi } from '../support/orchestrator-api.js';
import { callHook, leaseEvent, syntheticDevice, timedRun, type Timed } from './events.js';
import { figure, summarize, type Figure } from './stats.js';

/**
 * `hook`: one dnsmasq call of the real hook (the lab's wrapper running
 * dnsmasq/orchestrator-hook.sh, the shell spool writer, exactly as dnsmasq
 * runs it: the time dnsmasq's script queue is held), against `curl` posting
 * the same kind of signed body to the same URL from the same namespace. Both
 * are timed from the spawn of `ip netns exec` to exit, so that spawn is on
 * both sides (its own cost is reported beside them). Delivery is the
 * flusher's job: how long each event took from the hook's spawn to the
 * orchestrator's journal (its receivedAt, same host clock) is reported beside
 * the figure, and the figure fails if any event never arrived. The events are
 * `del`s for DUIDs nobody has: journaled and applied as "ignored", so no
 * container is made and the orchestrator's answer is as quick for both.
 */
export async function measureHook(lab: Lab, api: OrchestratorApi, runs: number): Promise<Figure[]> {
  const key = api.hookKey;
  const url = 'https://[::1]:8443/v1/lease-events';
  const curl = (): Promise<Timed> => {
    const body = JSON.stringify(leaseEvent('del', syntheticDevice(lab)));
    const headers = signRequest({ key, authority: '[::1]:8443', method: 'POST', path: '/v1/lease-events', body });
    return timedRun(
      inNs(lab.names.orch, [
        'curl', '-sS', '-g', '--noproxy', '*', '--max-time', '5', '--cacert', lab.caFile, '-o', '/dev/null', '-w', '%{http_code}',
        '-H', 'content-type: application/json',
        ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
        '--data-binary', body, url,
      ]),
    );
  };
  const hookDuids: string[] = [];
  const spawnedAt = new Map<string, number>();
  const hook = async (): Promise<Timed> => {
    const device = syntheticDevice(lab);
    hookDuids.push(device.duid);
    const timed = await callHook(lab, 'del', device);
    spawnedAt.set(device.duid, timed.startedAt);
    return timed;
  };
  const bare = () => timedRun(inNs(lab.names.orch, ['true']));
  const node = () => timedRun(inNs(lab.names.orch, [process.execPath, '-e', '0']));

  const times = { hook: [] as number[], curl: [] as number[], bare: [] as number[], node: [] as number[] };
  const failures: string[] = [];
  // Two warm-up rounds (page cache, TLS session of nothing: every call is a fresh process), then interleaved runs.
  for (let i = 0; i < runs + 2; i++) {
    const h = await hook();
    const c = await curl();
    if (h.code !== 0) failures.push(`hook exit ${h.code}: ${h.stderr.trim().slice(-200)}`);
    if (c.code !== 0 || c.stdout.trim() !== '202') failures.push(`curl exit ${c.code}, HTTP ${c.stdout.trim()}: ${c.stderr.trim().slice(-200)}`);
    if (i < 2) continue;
    times.hook.push(h.ms);
    times.curl.push(c.ms);
    if (i % 2 === 0) {
      times.bare.push((await bare()).ms);
      times.node.push((await node()).ms);
    }
  }
  // Delivered by the flusher: every hook call's event reaches the journal (give the last one a moment).
  const journalOf = () => api.get<{ events: Array<{ duid: string; receivedAt: string }> }>(`/v1/events?limit=${Math.min(1000, runs * 3 + 10)}`);
  let journal = await journalOf();
  for (let i = 0; i < 50 && hookDuids.some((d) => !journal.events.some((e) => e.duid === d)); i++) {
    await new Promise((r) => setTimeout(r, 100));
    journal = await journalOf();
  }
  const received = new Map(journal.events.map((e) => [e.duid, Date.parse(e.receivedAt)]));
  const missing = hookDuids.filter((d) => !received.has(d)).length;
  const delivery = summarize(hookDuids.slice(2).flatMap((d) => (received.has(d) ? [received.get(d)! - spawnedAt.get(d)!] : [])));

  const hookS = summarize(times.hook);
  const curlS = summarize(times.curl);
  const notes = [
    `the hook spools the call (plain sh) and its flusher delivers it: spawn -> in the orchestrator's journal p50 ${delivery.p50} ms, p95 ${delivery.p95} ms`,
    `context, p50: ip netns exec alone ${summarize(times.bare).p50} ms, node -e 0 under it ${summarize(times.node).p50} ms`,
    `events: del for unknown DUIDs (journaled, applied as ignored; nothing provisioned)`,
  ];
  if (missing > 0) notes.push(`${missing} of ${hookDuids.length} hook events never reached the journal (still spooled, or lost)`);
  if (failures.length > 0) notes.push(`${failures.length} failed calls, e.g. ${failures[0]}`);
  return [
    figure({
      name: 'hook',
      metric: 'p50 ms/call',
      value: hookS.p50,
      floor: curlS.p50,
      target: '<= 3x floor',
      pass: missing === 0 && failures.length === 0 && hookS.p50 <= 3 * curlS.p50,
      detail: { hook: hookS, curl: curlS, spawnToJournal: delivery, ipNetnsExec: summarize(times.bare), nodeStart: summarize(times.node), missing },
      notes,
    }),
  ];
}
