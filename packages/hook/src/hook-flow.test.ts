import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Hono } from 'hono';
import { RequestVerifier, SIGNATURE_HEADERS, hmacAuth, leaseEventSchema, listenHttps, type LeaseEvent } from '@unionize/protocol';
import { makeTestCerts } from '@unionize/protocol/testing/certs';
import type { ServerType } from '@hono/node-server';
import { SPOOL_DEPTH_HEADER, deliverTo } from './deliver.js';
import type { Level } from './log.js';
import { runHook } from './run-hook.js';
import { Spool } from './spool.js';

/**
 * The whole hook flow against a real HTTPS server verifying HMAC, as in
 * deliver.test.ts: orchestrator down → the event is spooled; orchestrator back →
 * the next run delivers the spool, then its own event, in order.
 */
// ca.crt, srv.crt and srv.key; the tests' configs, secrets and spools go beside them.
const { dir } = makeTestCerts('hook-flow');
const secretText = 'k'.repeat(64);
const secret = Buffer.from(secretText);
const received: { event: LeaseEvent; depth: string | undefined; signedAt: number }[] = [];
let server: ServerType | undefined;
let port = 0;

async function startServer(): Promise<void> {
  const app = new Hono();
  app.use('*', hmacAuth({ verifier: new RequestVerifier({ secret }) }));
  app.post('/v1/lease-events', async (c) => {
    received.push({
      event: leaseEventSchema.parse(await c.req.json()),
      depth: c.req.header(SPOOL_DEPTH_HEADER),
      signedAt: Number(c.req.header(SIGNATURE_HEADERS.timestamp)),
    });
    return c.json({ ok: true }, 202);
  });
  const listening = await listenHttps({ fetch: app.fetch, host: '127.0.0.1', port, certFile: join(dir, 'srv.crt'), keyFile: join(dir, 'srv.key') });
  server = listening.server;
  port = listening.port;
}

function stopServer(): Promise<void> {
  return new Promise((resolve) => {
    if (!server) return resolve();
    server.close(() => resolve());
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    server = undefined;
  });
}

beforeAll(async () => {
  await startServer(); // only to learn a free port; each test decides whether it runs
  await stopServer();
});

afterAll(() => stopServer());

let seq = 0;
function event(): LeaseEvent {
  seq++;
  return {
    eventId: randomUUID(), server: 'devnet', role: 'device', action: seq % 2 ? 'add' : 'old', duid: '00:03:00:01:02:aa:bb:cc:dd:01',
    iaid: String(seq), address: 'fd00:1::1000', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: new Date().toISOString(),
  };
}

describe('hook flow over TLS', () => {
  it('server down → spooled; server up → the next run delivers the spool, then its own event, in order', async () => {
    const spool = new Spool({ dir: join(dir, 'spool'), maxEvents: 100 });
    const deliver = deliverTo({ url: `https://localhost:${port}`, ca: readFileSync(join(dir, 'ca.crt')), secret });
    const lines: { level: Level; msg: string }[] = [];
    const log = (level: Level, msg: string) => void lines.push({ level, msg });
    const run = (e: LeaseEvent) => runHook({ event: e, spool, deliver, log, timeoutMs: 2000, now: () => performance.now(), deadline: performance.now() + 5000 });

    const down = [event(), event()];
    for (const e of down) expect(await run(e)).toMatchObject({ outcome: 'spooled' });
    expect(spool.depth()).toBe(2);
    expect(received).toEqual([]);

    await startServer();
    const before = Math.floor(Date.now() / 1000);
    const now = event();
    expect(await run(now)).toMatchObject({ outcome: 'delivered', flush: { delivered: 2, remaining: 0 } });
    expect(received.map((r) => r.event)).toEqual([...down, now]);
    expect(received.map((r) => r.depth)).toEqual(['1', '0', '0']);
    // Spooled events are signed when delivered, not when spooled.
    for (const r of received) expect(r.signedAt).toBeGreaterThanOrEqual(before);
    expect(spool.depth()).toBe(0);
    await stopServer();
  });

  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
  it.skipIf(!existsSync(main))('the built binary: dnsmasq call spools while down; --flush --config delivers; next call goes straight through', async () => {
    received.length = 0;
    const spoolDir = join(dir, 'bin-spool');
    writeFileSync(join(dir, 'secret'), secretText, { mode: 0o600 });
    writeFileSync(join(dir, 'hook.ini'), `[orchestrator]\nurl = https://localhost:${port}\nca = ${join(dir, 'ca.crt')}\nsecret_file = ${join(dir, 'secret')}\ntimeout_ms = 15000\n\n[dhcp]\nserver = devnet\n\n[spool]\ndir = ${spoolDir}\n`);
    const hook = (args: string[], env: NodeJS.ProcessEnv = {}) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [main, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    const dnsmasqEnv = (iaid: string) => ({ ORCHESTRATOR_HOOK_CONFIG: join(dir, 'hook.ini'), DNSMASQ_IAID: iaid, DNSMASQ_INTERFACE: 'brdev' });

    const spooled = await hook(['add', '00:03:00:01:02:aa:bb:cc:dd:09', 'fd00:1::1009', 'dev9'], dnsmasqEnv('9'));
    expect(spooled.code).toBe(0);
    expect(JSON.parse(spooled.stderr.trim().split('\n').at(-1)!)).toMatchObject({ level: 'warn', msg: expect.stringMatching(/^spooled: /) });
    expect(new Spool({ dir: spoolDir, maxEvents: 10 }).depth()).toBe(1);

    expect((await hook(['--flush', '--config', join(dir, 'hook.ini')])).code).toBe(75); // still down: events remain

    await startServer();
    const flushed = await hook(['--flush', '--config', join(dir, 'hook.ini')]);
    expect(flushed.code).toBe(0);
    expect(received.map((r) => [r.event.iaid, r.event.hostname])).toEqual([['9', 'dev9']]);

    const direct = await hook(['del', '00:03:00:01:02:aa:bb:cc:dd:09', 'fd00:1::1009'], dnsmasqEnv('9'));
    expect(direct.code).toBe(0);
    expect(JSON.parse(direct.stderr.trim().split('\n').at(-1)!)).toMatchObject({ level: 'info', msg: 'delivered' });
    expect(received.map((r) => r.event.action)).toEqual(['add', 'del']);
    await stopServer();
  }, 90_000);

  const script = fileURLToPath(new URL('../../../dnsmasq/orchestrator-hook.sh', import.meta.url));
  it.skipIf(!existsSync(main))('the shell hook: spools each call; the flusher daemon delivers them in order over one connection; without it node delivers', async () => {
    received.length = 0;
    const spoolDir = join(dir, 'sh-spool');
    const config = join(dir, 'hook-sh.ini');
    writeFileSync(join(dir, 'secret'), secretText, { mode: 0o600 });
    writeFileSync(config, `[orchestrator]\nurl = https://localhost:${port}\nca = ${join(dir, 'ca.crt')}\nsecret_file = ${join(dir, 'secret')}\n\n[dhcp]\nserver = devnet\n\n[spool]\ndir = ${spoolDir}\n`);
    const env = { PATH: process.env.PATH, ORCHESTRATOR_HOOK_CONFIG: config, ORCHESTRATOR_HOOK_NODE: process.execPath, ORCHESTRATOR_HOOK_BUNDLE: main };
    const call = (iaid: string, action = 'add') => new Promise<number | null>((resolve) => {
      spawn('/bin/sh', [script, action, '00:03:00:01:02:aa:bb:cc:dd:09', 'fd00:1::1009', `dev${iaid}`], { env: { ...env, DNSMASQ_IAID: iaid }, stdio: 'ignore' })
        .on('exit', resolve);
    });
    await startServer();
    let connections = 0;
    server!.on('secureConnection', () => connections++);

    // No flusher: the script hands over to node, which delivers before dnsmasq gets its script back.
    expect(await call('1')).toBe(0);
    expect(received.map((r) => r.event.iaid)).toEqual(['1']);

    const flusher = spawn(process.execPath, [main, '--flush', '--interval', '60'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let log = '';
      flusher.stderr.on('data', (d: Buffer) => (log += d.toString()));
      // Waits for states, not for time: on a busy machine each of these takes as long as it takes.
      await vi.waitFor(() => expect(log).toContain('flusher started'), { timeout: 20_000, interval: 50 });
      connections = 0;
      for (const iaid of ['2', '3', '4']) expect(await call(iaid, iaid === '4' ? 'del' : 'add')).toBe(0);
      await vi.waitFor(() => expect(received).toHaveLength(4), { timeout: 20_000, interval: 20 });
      expect(received.map((r) => [r.event.iaid, r.event.action, r.event.hostname])).toEqual([
        ['1', 'add', 'dev1'], ['2', 'add', 'dev2'], ['3', 'add', 'dev3'], ['4', 'del', 'dev4'],
      ]);
      expect(connections).toBe(1);
      // The flusher removes a spooled call after the orchestrator's answer, which comes after the server saw it.
      await vi.waitFor(() => expect(new Spool({ dir: spoolDir, maxEvents: 10 }).depth()).toBe(0), { timeout: 20_000, interval: 20 });
    } finally {
      flusher.kill('SIGTERM');
      await new Promise((r) => flusher.once('exit', r));
      await stopServer();
    }
  }, 90_000);
});
