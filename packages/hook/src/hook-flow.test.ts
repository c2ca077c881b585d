import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Hono } from 'hono';
import { Keyring, RequestVerifier, SIGNATURE_HEADERS, fixedKeys, formatKeyFile, hmacAuth, leaseEventSchema, listenHttps, type LeaseEvent } from '@unionize/protocol';
import { makeTestCerts } from '@unionize/protocol/testing/certs';
import { testKey } from '@unionize/protocol/testing/keys';
import type { ServerType } from '@hono/node-server';
import { HOOK_SPOOL_DEPTH_HEADER as SPOOL_DEPTH_HEADER } from '@unionize/protocol/lease-event';
import { Spool } from './spool.js';
import { spoolWriter } from './testing/spool-writer.js';

/**
 * The whole hook flow against a real HTTPS server verifying HMAC, as in
 * deliver.test.ts: orchestrator down → calls wait in the spool; orchestrator
 * back → the flusher delivers them, in order.
 */
// ca.crt, srv.crt and srv.key; the tests' configs, keys and spools go beside them. Made in
// beforeAll: with every test skipped (no build) no hook runs, and a folder made now would stay behind.
let dir = '';
const key = testKey('hook-1', 'k');
const received: { event: LeaseEvent; depth: string | undefined; signedAt: number }[] = [];
let server: ServerType | undefined;
let port = 0;

async function startServer(): Promise<void> {
  const app = new Hono();
  app.use('*', hmacAuth({ verifier: new RequestVerifier({ keys: new Keyring({ hook: fixedKeys([key]) }) }) }));
  app.post('/v1/lease-events', async (c) => {
    received.push({
      event: leaseEventSchema.parse(await c.req.json()),
      depth: c.req.header(SPOOL_DEPTH_HEADER),
      signedAt: Number(/;created=([0-9]+);/.exec(c.req.header(SIGNATURE_HEADERS.input) ?? '')?.[1]),
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
  ({ dir } = makeTestCerts('hook-flow'));
  await startServer(); // only to learn a free port; each test decides whether it runs
  await stopServer();
});

afterAll(() => stopServer());

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

describe('hook flow over TLS: dnsmasq/orchestrator-hook.sh writes, the built flusher reads', () => {
  it.skipIf(!existsSync(main))('spools each call while the orchestrator is down; the flusher delivers them in order, signed at delivery, over one connection', async () => {
    received.length = 0;
    const work = join(dir, 'flow');
    const spoolDir = join(work, 'spool');
    const config = join(dir, 'hook-flow.ini');
    writeFileSync(join(dir, 'hook.keys'), formatKeyFile('hook', [key]), { mode: 0o600 });
    writeFileSync(config, `[orchestrator]\nurl = https://localhost:${port}\nca = ${join(dir, 'ca.crt')}\nkey_file = ${join(dir, 'hook.keys')}\n\n[dhcp]\nserver = devnet\n\n[spool]\ndir = ${spoolDir}\n`);
    const writer = spoolWriter(spoolDir, work);
    const call = (iaid: string, action = 'add') => writer.call([action, '00:03:00:01:02:aa:bb:cc:dd:09', 'fd00:1::1009', `dev${iaid}`], { DNSMASQ_IAID: iaid }).status;
    const spool = new Spool({ dir: spoolDir, dhcp: { server: 'devnet', role: 'device' } });

    const flusher = spawn(process.execPath, [main, '--flush', '--interval', '1'], { env: { PATH: process.env.PATH, ORCHESTRATOR_HOOK_CONFIG: config }, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let log = '';
      flusher.stderr.on('data', (d: Buffer) => (log += d.toString()));
      // Waits for states, not for time: on a busy machine each of these takes as long as it takes.
      await vi.waitFor(() => expect(log).toContain('flusher started'), { timeout: 20_000, interval: 50 });
      for (const iaid of ['1', '2']) expect(call(iaid)).toBe(0);
      await vi.waitFor(() => expect(log).toContain('spool not flushed'), { timeout: 20_000, interval: 50 });
      expect(spool.depth()).toBe(2);

      await startServer();
      const before = Math.floor(Date.now() / 1000);
      let connections = 0;
      server!.on('secureConnection', () => connections++);
      for (const iaid of ['3', '4']) expect(call(iaid, iaid === '4' ? 'del' : 'add')).toBe(0);
      await vi.waitFor(() => expect(received).toHaveLength(4), { timeout: 20_000, interval: 20 });
      expect(received.map((r) => [r.event.iaid, r.event.action, r.event.hostname, r.event.server])).toEqual([
        ['1', 'add', 'dev1', 'devnet'], ['2', 'add', 'dev2', 'devnet'], ['3', 'add', 'dev3', 'devnet'], ['4', 'del', 'dev4', 'devnet'],
      ]);
      // Spooled calls are signed when delivered, not when spooled.
      for (const r of received) expect(r.signedAt).toBeGreaterThanOrEqual(before);
      expect(connections).toBe(1);
      // The flusher removes a spooled call after the orchestrator's answer, which comes after the server saw it.
      await vi.waitFor(() => expect(spool.depth()).toBe(0), { timeout: 20_000, interval: 20 });
    } finally {
      flusher.kill('SIGTERM');
      await new Promise((r) => flusher.once('exit', r));
      await stopServer();
    }
  }, 90_000);

  it.skipIf(!existsSync(main))('node is the flusher only: run as a dnsmasq script, or without --interval, it refuses with exit 2', () => {
    for (const args of [['add', '00:03:00:01:02:aa:bb:cc:dd:09', 'fd00:1::1009'], ['--flush']]) {
      const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('only the flusher runs in node');
    }
  });
});
