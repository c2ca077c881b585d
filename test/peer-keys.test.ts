import { copyFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOOK_PEER, agentPeer, formatKeyFile, peerKeyFile, readKeyFile, signRequest, type SigningKey } from '@unionize/protocol';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { run } from './lab/process.js';
import { repoRoot } from './lab/repo.js';
import { OrchestratorApi } from './support/orchestrator-api.js';
import { sendAsIs } from './support/send-as-is.js';

/**
 * A key per peer (issue 15, point 1), against the real daemons: each key
 * opens only what its peer may do, a request signed for one agent is refused
 * by the other and by the orchestrator, and every key (the hook's, each
 * agent's) is rotated while devices lease, with no request refused.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const CTL = join(repoRoot(), 'packages', 'ctl', 'dist', 'main.js');

describe.skipIf(skipReason)('a key per peer', () => {
  let lab: Lab;
  let api: OrchestratorApi;
  /** The orchestrator's own (private) copies of the key files, as `[auth] keys_dir` names them. */
  let orchestratorKeys: string;

  beforeAll(async () => {
    lab = await startLab({ devices: 2, dockerHosts: 2 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
    orchestratorKeys = join(lab.dir, 'orchestrator', 'keys');
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  const keyOf = (dir: string, peer: string): SigningKey => readKeyFile(peerKeyFile(dir, peer))[0]!;
  /** A GET signed with `key` for the server at `url`, sent from the orchestrator's namespace (the agents are reachable from there only). */
  const getAs = (key: SigningKey, url: string, path: string, authority = new URL(url).host) =>
    sendAsIs(lab, lab.names.orch, url, 'GET', path, signRequest({ key, authority, method: 'GET', path, body: '' }));
  const orchestratorUrl = () => `https://[${lab.addresses.orchTransit}]:8443`;

  it("opens with each key only what its peer may, and no agent takes another's key", async () => {
    const [dock1, dock2] = lab.dockerHosts.map((h) => h.unionizeUrl) as [string, string];
    const agent1 = keyOf(lab.keysDir, agentPeer('dock1'));
    const agent2 = keyOf(lab.keysDir, agentPeer('dock2'));
    const hook = keyOf(lab.keysDir, HOOK_PEER);

    // The operator's key reads; the hook's may post lease events only; an operator's may not post them.
    expect((await api.call('GET', '/v1/clients')).status).toBe(200);
    expect(await api.call('GET', '/v1/clients', { key: hook })).toMatchObject({ status: 403, json: { error: { code: 'FORBIDDEN' } } });
    expect(await api.call('POST', '/v1/lease-events', { body: '{}', key: api.operatorKey })).toMatchObject({ status: 403 });

    // Each agent takes its own key, and only its own; the orchestrator takes neither.
    expect(await getAs(agent1, dock1, '/v1/containers')).toEqual({ status: 200, code: undefined });
    expect(await getAs(agent2, dock2, '/v1/containers')).toEqual({ status: 200, code: undefined });
    expect(await getAs(agent1, dock2, '/v1/containers')).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    expect(await getAs(agent2, dock1, '/v1/containers')).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    expect(await getAs(agent1, orchestratorUrl(), '/v1/clients')).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    expect(await getAs(hook, dock1, '/v1/containers')).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    // A request signed for dock1 (its authority in the signature) and sent to dock2 as it is.
    const forDock1 = signRequest({ key: agent1, authority: new URL(dock1).host, method: 'GET', path: '/v1/containers', body: '' });
    expect(await sendAsIs(lab, lab.names.orch, dock2, 'GET', '/v1/containers', forDock1)).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it("rotates the hook's and each agent's key while devices lease, and then refuses the old keys", async () => {
    const ctl = async (...args: string[]) => {
      const result = await run([process.execPath, CTL, '--keys-dir', orchestratorKeys, ...args], { timeoutMs: 30_000 });
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      return result.stdout;
    };
    const peers = [HOOK_PEER, agentPeer('dock1'), agentPeer('dock2')];
    const old = Object.fromEntries(peers.map((p) => [p, keyOf(orchestratorKeys, p)]));
    const ownerBefore = peers.map((p) => statSync(peerKeyFile(orchestratorKeys, p)).uid);

    // Step one: the next key of each, accepted where it is verified; signers go on with the old one.
    for (const peer of peers) expect(await ctl('keys', 'rotate', peer)).toContain(`${peer}: added`);
    const next = Object.fromEntries(peers.map((p) => [p, readKeyFile(peerKeyFile(orchestratorKeys, p))[1]!]));
    // The agents verify with their copies (the lab's originals): copied, as an operator would.
    for (const agent of ['dock1', 'dock2']) copyFileSync(peerKeyFile(orchestratorKeys, agentPeer(agent)), peerKeyFile(lab.keysDir, agentPeer(agent)));
    // Each verifier takes the next key once it has read its file again (at most a second after it changed).
    const agents: Array<[string, string]> = [
      [agentPeer('dock1'), lab.dockerHosts[0]!.unionizeUrl],
      [agentPeer('dock2'), lab.dockerHosts[1]!.unionizeUrl],
    ];
    const first = await lab.lease(1);
    for (const [peer, url] of agents) {
      await expect.poll(async () => (await getAs(next[peer]!, url, '/v1/containers')).status, { timeout: 15_000, interval: 300 }).toBe(200);
    }
    // The hook's next key at the orchestrator: only lease events, so an empty one answers 400 (signature taken, body refused), not 401.
    await expect
      .poll(async () => (await sendAsIs(lab, lab.names.orch, orchestratorUrl(), 'POST', '/v1/lease-events',
        { 'content-type': 'application/json', ...signRequest({ key: next[HOOK_PEER]!, authority: new URL(orchestratorUrl()).host, method: 'POST', path: '/v1/lease-events', body: '{}' }) }, '{}')).status,
      { timeout: 15_000, interval: 300 })
      .toBe(400);
    await api.waitForClient(first.duid, (c) => c.state === 'ready', 90_000);

    // Step two. The hook signs elsewhere (its own copy): it moves to the next key first, while the orchestrator takes both.
    writeFileSync(peerKeyFile(lab.keysDir, HOOK_PEER), formatKeyFile(HOOK_PEER, [next[HOOK_PEER]!]), { mode: 0o600 });
    // Then the old keys go at the orchestrator, which moves to each agent's next key as it signs.
    for (const peer of peers) expect(await ctl('keys', 'retire', peer)).toContain(`retired ${old[peer]!.id}`);
    for (const agent of ['dock1', 'dock2']) copyFileSync(peerKeyFile(orchestratorKeys, agentPeer(agent)), peerKeyFile(lab.keysDir, agentPeer(agent)));
    // The orchestrator (unprivileged) still owns, so still reads, the files root rewrote.
    expect(peers.map((p) => statSync(peerKeyFile(orchestratorKeys, p)).uid)).toEqual(ownerBefore);

    const second = await lab.lease(2);
    await api.waitForClient(second.duid, (c) => c.state === 'ready', 90_000);
    await lab.release(1);
    await api.waitForClient(first.duid, (c) => c.state === 'gone' && c.instance === null, 90_000);

    // The old keys are refused everywhere now.
    for (const [peer, url] of agents) {
      await expect.poll(async () => (await getAs(old[peer]!, url, '/v1/containers')).status, { timeout: 15_000, interval: 300 }).toBe(401);
    }
    await expect.poll(async () => (await api.call('POST', '/v1/lease-events', { body: '{}', key: old[HOOK_PEER] })).status, { timeout: 15_000 }).toBe(401);
  });
});
