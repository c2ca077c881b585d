import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring, RequestVerifier, certificatePin, fixedKeys, formatKeyFile, hmacAuth, readKeyFile, listenHttps, type ClientView, type EventView } from '@unionize/protocol';
import { makeTestCerts, type TestCerts } from '@unionize/protocol/testing/certs';
import { testKey } from '@unionize/protocol/testing/keys';
import { buildProgram } from './cli.js';
import { CtlError } from './errors.js';
import { init } from './init.js';
import { localUrl, resolveConnection } from './settings.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

const OPERATOR_KEY = testKey('operator-1', 'a');
const LEADER = { name: 'orch-a', url: 'https://orch-a:8443', epoch: 4, since: '2026-01-01T00:00:00.000Z' };

/** Answers as the contract (protocol's orchestrator-api.ts) describes them. */
const client = (over: Partial<ClientView> = {}): ClientView => ({
  id: '0123456789abcdef0123', server: 'devnet', role: 'device', duid: '00:03:00:01:02:aa:bb:cc:dd:01', iaid: '1',
  address: 'fd00:1::1000', hostname: 'laptop', mac: '02:aa:bb:cc:dd:01', state: 'ready', desired: 'running',
  stateReason: 'container dev-0123456789ab on dock1 at fd00:3::100', expiresAt: null, profile: null, ttlExpiresAt: null, cooldownUntil: null,
  firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: new Date().toISOString(), updatedAt: '2026-01-01T00:00:00.000Z',
  instance: { clientId: '0123456789abcdef0123', agent: 'dock1', containerName: 'dev-0123456789ab', containerId: 'c1', address: 'fd00:3::100/64', mac: '02:11:22:33:44:55', image: 'img', createdAt: '2026-01-01T00:00:00.000Z' },
  ...over,
});

let certs: TestCerts;
let server: ServerType;
let url: string;
let dir: string;
let keyFile: string;
const deleted: string[] = [];
let eventPolls = 0;
const bansAsked: unknown[] = [];

beforeAll(async () => {
  certs = makeTestCerts('ctl');
  dir = makeTempDir('ctl-test-');
  mkdirSync(join(dir, 'keys'), { mode: 0o700 });
  keyFile = join(dir, 'keys', 'operator.keys');
  writeFileSync(keyFile, formatKeyFile('operator', [OPERATOR_KEY]), { mode: 0o600 });
  const app = new Hono();
  app.use('/v1/*', hmacAuth({ verifier: new RequestVerifier({ keys: new Keyring({ operator: fixedKeys([OPERATOR_KEY]) }) }) }));
  app.get('/v1/clients', (c) => c.json({ clients: [client(), client({ id: 'fedcba98765432100000', hostname: 'phone', address: 'fd00:1::1001', state: 'gone', instance: null })], next: null }));
  app.get('/v1/clients/:id', (c) => c.json({ ...client(), transitions: [{ clientId: c.req.param('id'), from: 'provisioning', to: 'ready', reason: 'container up', at: '2026-01-01T00:00:01.000Z' }] }));
  app.delete('/v1/clients/:id', (c) => {
    deleted.push(c.req.param('id'));
    return c.json({ clientId: c.req.param('id'), queued: true }, 202);
  });
  app.get('/v1/agents', (c) => c.json({ agents: [{ name: 'dock1', instances: 1, healthy: true, checkedAt: new Date().toISOString(), pools: [{ name: 'default', size: 3, ready: 2, starting: 1, claims: 7, misses: 1, lastRefillMs: 420 }] }] }));
  app.get('/v1/events', (c) => {
    const base = {
      clientId: '0123456789abcdef0123', server: 'devnet', duid: '00:03:00:01:02:aa:bb:cc:dd:01', address: 'fd00:1::1000',
      seenAt: '2026-01-01T00:00:00.000Z', outcomeKind: null,
    } as const;
    if (c.req.query('limit') === '999') {
      // Big enough that stdout, through a pipe, must be drained more than once (over 1 MiB of --json).
      const reason = 'x'.repeat(1200);
      const events: EventView[] = Array.from({ length: 999 }, (_, i) => ({ ...base, eventId: `big-${i}`, action: 'old', outcome: reason, receivedAt: '2026-01-01T00:00:00.000Z', appliedAt: null }));
      return c.json({ events });
    }
    eventPolls++;
    const events: EventView[] = [{ ...base, eventId: 'e1', action: 'add', receivedAt: '2026-01-01T00:00:00.000Z', appliedAt: '2026-01-01T00:00:01.000Z', outcome: 'provisioned', outcomeKind: 'provisioned' }];
    if (eventPolls > 1) events.unshift({ ...base, eventId: 'e2', action: 'del', receivedAt: '2026-01-01T00:01:00.000Z', appliedAt: '2026-01-01T00:01:01.000Z', outcome: 'deprovisioned', outcomeKind: 'deprovisioned' });
    return c.json({ events });
  });
  app.post('/v1/bans', async (c) => {
    const body = await c.req.json();
    bansAsked.push(body);
    const until = body.seconds ? new Date(Date.parse('2026-01-01T00:00:00.000Z') + body.seconds * 1000).toISOString() : null;
    return c.json({ ban: { target: body.target, kind: body.target.split(':').length === 6 ? 'mac' : 'duid', since: '2026-01-01T00:00:00.000Z', until }, removing: 1 }, 201);
  });
  app.get('/v1/bans', (c) => c.json({ bans: [{ target: '52:54:00:12:34:56', kind: 'mac', since: '2026-01-01T00:00:00.000Z', until: null }] }));
  app.delete('/v1/bans/:target', (c) => c.json({ target: c.req.param('target'), removed: true }));
  // An answer of another shape: what an orchestrator of another version might send.
  app.post('/v1/clients/:id/restore', (c) => c.json({ clientId: c.req.param('id'), image: `unionize-kept/${c.req.param('id')}:20260101T000000000Z`, queued: true }, 202));
  app.post('/v1/clients/:id/shares', async (c) => {
    const { seconds } = (await c.req.json()) as { seconds: number };
    const expiresAt = new Date(Date.parse('2026-01-01T00:00:00.000Z') + seconds * 1000).toISOString();
    return c.json({ url: `https://orch.example:8443/shared/${'x'.repeat(43)}`, clientId: c.req.param('id'), filename: `${c.req.param('id')}-live.tar.gz`, sizeBytes: 1234, expiresAt }, 201);
  });
  app.get('/v1/leadership', (c) => c.json({ name: 'orch-a', role: 'leader', leader: LEADER }));
  app.get('/v1/servers', (c) => c.json({ servers: [{ name: 'devnet', role: 'router', firstSeen: '2026-01-01T00:00:00.000Z' }] }));
  ({ server } = await listenHttps({ fetch: app.fetch, host: '127.0.0.1', port: 0, certFile: certs.cert, keyFile: certs.key }));
  url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server?.close();
});

async function ctl(args: string[], options: { sleeps?: number } = {}): Promise<{ out: string; err: string; error?: Error }> {
  const out: string[] = [];
  const err: string[] = [];
  let sleeps = options.sleeps ?? 0;
  const program = buildProgram({
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    sleep: async () => {
      if (sleeps-- <= 0) throw new Error('stop following');
    },
  });
  program.exitOverride();
  try {
    await program.parseAsync(['node', 'orchestratorctl', ...args]);
    return { out: out.join('\n'), err: err.join('\n') };
  } catch (error) {
    return { out: out.join('\n'), err: err.join('\n'), error: error as Error };
  }
}

const conn = () => ['--url', url, '--key-file', keyFile, '--ca', certs.caCert];

describe('orchestratorctl against a signed HTTPS API', () => {
  it('prints clients as an aligned table, leaving gone ones out unless --all', async () => {
    const { out, error } = await ctl([...conn(), 'clients']);
    expect(error).toBeUndefined();
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^CLIENT\s+STATE\s+HOSTNAME\s+DEVICE ADDRESS\s+CONTAINER\s+CONTAINER ADDRESS\s+AGENT\s+SEEN$/);
    expect(lines[1]).toMatch(/^0123456789abcdef0123\s+ready\s+laptop\s+fd00:1::1000\s+dev-0123456789ab\s+fd00:3::100\s+dock1\s+\d+s$/);
    expect(lines[0]!.indexOf('STATE')).toBe(lines[1]!.indexOf('ready'));
    expect(lines).toHaveLength(2);
    expect((await ctl([...conn(), 'clients', '--all'])).out.split('\n')).toHaveLength(3);
  });

  it('prints JSON with --json', async () => {
    const { out } = await ctl([...conn(), '--json', 'clients', '--all']);
    expect(JSON.parse(out).clients.map((c: { hostname: string }) => c.hostname)).toEqual(['laptop', 'phone']);
  });

  it('verifies by pin as well as by CA, and refuses a wrong pin before sending anything', async () => {
    const pin = certificatePin(readFileSync(certs.cert));
    expect((await ctl(['--url', url, '--key-file', keyFile, '--pin', pin, 'agents'])).out).toMatch(/^AGENT\s+HEALTH\s+CONTAINERS\s+CHECKED\s+POOLS\ndock1\s+healthy\s+1\s+.*default 2\/3\+1, claims 7, misses 1/);
    const wrong = await ctl(['--url', url, '--key-file', keyFile, '--pin', `sha256/${'A'.repeat(43)}=`, 'agents']);
    expect(wrong.error).toBeInstanceOf(CtlError);
    expect(wrong.error!.message).toMatch(/^cannot reach the orchestrator at https:\/\/127\.0\.0\.1:\d+: server certificate does not match the pin/);
  });

  it('says in one line when the orchestrator refuses the signature (401)', async () => {
    const other = join(dir, 'other.keys');
    writeFileSync(other, formatKeyFile('operator', [testKey('operator-1', 'b')]), { mode: 0o600 });
    const { error } = await ctl(['--url', url, '--key-file', other, '--ca', certs.caCert, 'clients']);
    expect(error?.message).toBe(
      'the orchestrator refused the request (401 UNAUTHENTICATED: bad signature): is the key file one of the orchestrator\'s operator keys (operator.keys), and are both clocks within 60 s?',
    );
  });

  it('restores a client from its kept image', async () => {
    expect((await ctl([...conn(), 'restore', '0123456789abcdef0123'])).out).toBe('client 0123456789abcdef0123: being restored from unionize-kept/0123456789abcdef0123:20260101T000000000Z');
  });

  it('makes a share link for a client, for a while; refuses a bad duration before sending', async () => {
    const made = await ctl([...conn(), 'share', '0123456789abcdef0123', '--for', '2d']);
    expect(made.out).toBe(`https://orch.example:8443/shared/${'x'.repeat(43)}\n  0123456789abcdef0123-live.tar.gz, 1234 bytes; serves once, until 2026-01-03T00:00:00.000Z`);
    expect(made.err).toMatch(/spooling its export/);
    expect((await ctl([...conn(), 'share', '0123456789abcdef0123', '--for', '100d'])).error?.message).toMatch(/a duration of 1s to 90d/);
  });

  it('bans a device (for a while, or until unbanned), lists the bans and lifts one; refuses a bad MAC, DUID or duration before sending', async () => {
    expect((await ctl([...conn(), 'ban', '00:03:00:01:52:54:00:AB:CD:01', '--for', '1h30m'])).out).toBe(
      'DUID 00:03:00:01:52:54:00:ab:cd:01 banned until 2026-01-01T01:30:00.000Z; containers being removed: 1',
    );
    expect((await ctl([...conn(), 'ban', '52:54:00:12:34:56'])).out).toMatch(/^MAC 52:54:00:12:34:56 banned until unbanned/);
    expect(bansAsked).toEqual([{ target: '00:03:00:01:52:54:00:ab:cd:01', seconds: 5400 }, { target: '52:54:00:12:34:56' }]);
    expect((await ctl([...conn(), 'bans'])).out).toMatch(/^DEVICE\s+BY\s+SINCE\s+ENDS\n52:54:00:12:34:56\s+MAC\s+.*when unbanned$/);
    expect((await ctl([...conn(), 'unban', '52:54:00:12:34:56'])).out).toBe('52:54:00:12:34:56 unbanned: it gets a container again on its next lease');
    expect((await ctl([...conn(), 'ban', '52-54-00-12-34-56'])).error?.message).toMatch(/is neither a MAC .* nor a DUID/);
    expect((await ctl([...conn(), 'ban', '52:54:00:12:34:5g'])).error?.message).toMatch(/is not a MAC/);
    expect((await ctl([...conn(), 'ban', '52:54:00:12:34:56', '--for', 'forever'])).error?.message).toMatch(/is not a duration: write e.g. 90s/);
    expect((await ctl([...conn(), 'ban', '52:54:00:12:34:56', '--for', '0s'])).error?.message).toMatch(/a duration of 1s to 3650d/);
    expect(bansAsked).toHaveLength(2);
  });

  it('says in one line when nothing listens', async () => {
    const { error } = await ctl(['--url', 'https://127.0.0.1:1', '--key-file', keyFile, '--ca', certs.caCert, 'clients']);
    expect(error?.message).toBe('cannot reach the orchestrator at https://127.0.0.1:1: connection refused (is the orchestrator running? systemctl status orchestrator)');
  });

  it('says in one line when an answer is not the one the contract describes', async () => {
    const { error } = await ctl([...conn(), 'servers']);
    expect(error).toBeInstanceOf(CtlError);
    expect(error?.message).toBe(
      "GET /v1/servers: the orchestrator's answer is not the one orchestratorctl knows (at servers.0.role: Invalid option: expected one of \"device\"|\"instance\"); are both the same version?",
    );
  });

  it('shows a client found by hostname, and deprovisions one found by id prefix', async () => {
    const shown = await ctl([...conn(), 'show', 'laptop']);
    expect(shown.out).toMatch(/^client\s+0123456789abcdef0123$/m);
    expect(shown.out).toMatch(/^container\s+dev-0123456789ab on dock1$/m);
    expect(shown.out).toMatch(/transitions \(newest first\):\nAT\s+FROM\s+TO\s+REASON\n.*provisioning\s+ready\s+container up/);
    const done = await ctl([...conn(), 'deprovision', 'fedc']);
    expect(done.out).toContain('client fedcba98765432100000: deprovisioning queued');
    expect(deleted).toEqual(['fedcba98765432100000']);
    expect((await ctl([...conn(), 'show', 'nobody'])).error?.message).toMatch(/^no client matches "nobody"/);
  });

  it('events --follow prints the latest, then each newly applied event once', async () => {
    eventPolls = 0;
    const { out } = await ctl([...conn(), 'events', '--follow', '--interval', '0.2'], { sleeps: 2 });
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^RECEIVED\s+ACTION\s+ADDRESS\s+CLIENT\s+OUTCOME$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[2])).toEqual(['add', 'del']);
  });
});

const builtMain = new URL('../dist/main.js', import.meta.url);

describe('orchestratorctl migrate', () => {
  const orchestratorBundle = new URL('../../orchestrator/dist/bundle/orchestrator.mjs', import.meta.url);
  it.skipIf(!existsSync(builtMain) || !existsSync(orchestratorBundle))("runs the orchestrator's migrate, its words and exit status passed through (needs a build)", async () => {
    const child = spawn(process.execPath, [builtMain.pathname, 'migrate', '--from', 'sqlite:/nonexistent/state.db', '--to', 'postgres://orch@/unionize?host=/nonexistent', '--dry-run'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('orchestrator migrate: cannot open the SQLite store /nonexistent/state.db');
    expect(stderr).toContain('orchestratorctl: migrate failed (exit 1): see above');
  });
});

describe('orchestratorctl, the built command, through a pipe', () => {
  it.skipIf(!existsSync(builtMain))('writes all of more than 1 MiB of --json before it exits (needs a build)', async () => {
    const child = spawn(process.execPath, [builtMain.pathname, '--json', '--url', url, '--key-file', keyFile, '--ca', certs.caCert, 'events', '-n', '999'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let stderr = '';
    // A slow reader: the pipe fills, and the command must wait for it rather than exit.
    child.stdout.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), 2);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(0);
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text.length).toBeGreaterThan(1 << 20);
    expect((JSON.parse(text) as { events: unknown[] }).events).toHaveLength(999);
  });
});

describe('an orchestrator pair', () => {
  let standby: ServerType;
  let standbyUrl: string;
  let standbyAsked = 0;

  beforeAll(async () => {
    const app = new Hono();
    app.use('/v1/*', hmacAuth({ verifier: new RequestVerifier({ keys: new Keyring({ operator: fixedKeys([OPERATOR_KEY]) }) }) }));
    app.get('/v1/leadership', (c) => c.json({ name: 'orch-b', role: 'standby', leader: LEADER }));
    app.all('*', (c) => {
      standbyAsked++;
      c.header('retry-after', '1');
      return c.json({ error: { code: 'STANDBY', message: 'this orchestrator stands by' } }, 503);
    });
    ({ server: standby } = await listenHttps({ fetch: app.fetch, host: '127.0.0.1', port: 0, certFile: certs.cert, keyFile: certs.key }));
    standbyUrl = `https://127.0.0.1:${(standby.address() as { port: number }).port}`;
  });

  afterAll(() => {
    standby?.close();
  });

  it('goes on past the standby to the leader, and then asks the leader first', async () => {
    const both = ['--url', `${standbyUrl},${url}`, '--key-file', keyFile, '--ca', certs.caCert];
    const first = await ctl([...both, 'agents']);
    expect(first.error).toBeUndefined();
    expect(first.out).toMatch(/^AGENT/);
    expect(standbyAsked).toBe(1);
    const { error } = await ctl([...both, 'clients']);
    expect(error).toBeUndefined();
    expect(standbyAsked).toBe(2);
  });

  it('status: says which leads and which stands by; an orchestrator down is shown, and fails the command only when none leads', async () => {
    const { out, error } = await ctl(['--url', `${url},${standbyUrl},https://127.0.0.1:1`, '--key-file', keyFile, '--ca', certs.caCert, 'status']);
    expect(error).toBeUndefined();
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^URL\s+NAME\s+ROLE$/);
    expect(lines[1]).toMatch(/^https:\/\/127\.0\.0\.1:\d+\s+orch-a\s+leader$/);
    expect(lines[2]).toMatch(/^https:\/\/127\.0\.0\.1:\d+\s+orch-b\s+standby$/);
    expect(lines[3]).toMatch(/^https:\/\/127\.0\.0\.1:1\s+-\s+unreachable: cannot reach the orchestrator at https:\/\/127\.0\.0\.1:1: connection refused/);
    expect(lines[4]).toMatch(/^leader: orch-a \(https:\/\/orch-a:8443\), epoch 4, since /);
    const alone = await ctl(['--url', standbyUrl, '--key-file', keyFile, '--ca', certs.caCert, '--json', 'status']);
    expect(JSON.parse(alone.out).orchestrators).toEqual([{ url: standbyUrl, name: 'orch-b', role: 'standby', leader: LEADER }]);
    expect(alone.error?.message).toMatch(/^no orchestrator leads now/);
  });
});

describe('connection settings', () => {
  it("take the URL, the operator's key and the pin from orchestrator.ini ([server] cert pinned)", () => {
    const config = join(dir, 'orchestrator.ini');
    writeFileSync(config, `[server]\nlisten = ::\nport = 8443\ncert = ${certs.cert}\nkey = ${certs.key}\n[auth]\nkeys_dir = ${join(dir, 'keys')}\n`);
    const connection = resolveConnection({ config });
    expect(connection.urls).toEqual(['https://[::1]:8443']);
    expect(connection.key).toEqual(OPERATOR_KEY);
    expect(connection.trust.pin?.toString('base64')).toBe(certificatePin(readFileSync(certs.cert)).slice(7));
    expect(resolveConnection({ config, url: 'https://[fd00:4::1]:8443' }).urls).toEqual(['https://[fd00:4::1]:8443']);
    // A pair: every orchestrator of [pair] urls, verified by [pair] ca.
    writeFileSync(config, `[server]\nlisten = ::\nport = 8443\ncert = ${certs.cert}\nkey = ${certs.key}\n[auth]\nkeys_dir = ${join(dir, 'keys')}\n[pair]\nurls = https://a:8443, https://b:8443\nca = ${certs.caCert}\n`);
    const pair = resolveConnection({ config });
    expect(pair.urls).toEqual(['https://a:8443', 'https://b:8443']);
    expect(pair.trust.ca).toBeDefined();
    expect(pair.trust.pin).toBeUndefined();
    expect(localUrl('0.0.0.0', 1)).toBe('https://127.0.0.1:1');
    expect(localUrl('fd00:2::1', 8443)).toBe('https://[fd00:2::1]:8443');
  });

  it('name the key when the config is wrong', () => {
    const config = join(dir, 'bad.ini');
    writeFileSync(config, '[server]\ncert = /nonexistent.crt\n[auth]\nkeys_dir = /x\n');
    expect(() => resolveConnection({ config })).toThrow('[server] cert: cannot read /nonexistent.crt: ENOENT');
  });
});

describe('orchestratorctl init', () => {
  it("makes each peer's key, tokens, a CA and both certificates with safe modes, SANs and matching pins; a second run keeps the CA and keys", async () => {
    // A missing parent, as /etc/unionize for --dir /etc/unionize/pki: made 755, or the orchestrator's user could not reach pki/.
    const out = join(dir, 'etc-unionize', 'pki');
    const result = await init({ dir: out, orchestratorSans: ['fd00:2::1', 'DNS:orch.example'], unionizeSans: ['IP:fd00:2::2'], agents: ['dock1', 'dock2'], days: 30 });
    const mode = (f: string) => statSync(f).mode & 0o777;
    expect(mode(out)).toBe(0o700);
    expect(mode(join(dir, 'etc-unionize'))).toBe(0o755);
    const keyFiles = ['hook', 'operator', 'agent-dock1', 'agent-dock2'].map((peer) => join(out, 'keys', `${peer}.keys`));
    for (const f of [...keyFiles, result.files.dashboardToken, result.files.metricsToken, result.files.caKey, result.files.orchestratorKey, result.files.unionizeKey]) {
      expect(mode(f), f).toBe(0o600);
    }
    const ids = keyFiles.map((f) => readKeyFile(f).map((k) => k.id));
    expect(ids.map((i) => i.length)).toEqual([1, 1, 1, 1]);
    expect(ids.flat().map((id) => id.replace(/-\d{8}-[0-9a-f]{8}$/, ''))).toEqual(['hook', 'operator', 'agent-dock1', 'agent-dock2']);
    const ca = new X509Certificate(readFileSync(result.files.caCert));
    const orch = new X509Certificate(readFileSync(result.files.orchestratorCert));
    const uni = new X509Certificate(readFileSync(result.files.unionizeCert));
    expect(orch.verify(ca.publicKey)).toBe(true);
    expect(uni.verify(ca.publicKey)).toBe(true);
    expect(orch.checkIP('fd00:2::1')).toBe('fd00:2::1');
    expect(orch.checkIP('::1')).toBe('::1');
    expect(orch.checkHost('orch.example')).toBe('orch.example');
    expect(uni.checkIP('fd00:2::2')).toBe('fd00:2::2');
    expect(result.pins.orchestrator).toBe(certificatePin(readFileSync(result.files.orchestratorCert)));

    const keysBefore = keyFiles.map((f) => readFileSync(f, 'utf8'));
    const again = await init({ dir: out, orchestratorSans: [], unionizeSans: ['fd00:2::2'], agents: ['dock1', 'dock2'], days: 30 });
    expect(keyFiles.map((f) => readFileSync(f, 'utf8'))).toEqual(keysBefore);
    expect(readFileSync(again.files.caCert, 'utf8')).toBe(readFileSync(result.files.caCert, 'utf8'));
    expect(again.pins.unionize).not.toBe(result.pins.unionize);
    expect(again.made).not.toContain(again.files.caKey);
  });

  it('refuses a SAN that is neither an address nor a name (it would go into an openssl config)', async () => {
    await expect(init({ dir: join(dir, 'x'), orchestratorSans: ['a,DNS:evil'], unionizeSans: ['fd00::2'], agents: [], days: 30 })).rejects.toThrow(/not a subject alternative name/);
    await expect(init({ dir: join(dir, 'y'), orchestratorSans: [], unionizeSans: ['x\nbasicConstraints=CA:TRUE'], agents: [], days: 30 })).rejects.toThrow(/not a subject alternative name/);
  });
});

describe('orchestratorctl keys', () => {
  it('rotates a peer key in two steps, keeping mode and owner, and refuses steps out of order', async () => {
    const keysDir = join(dir, 'rotate-keys');
    mkdirSync(keysDir, { mode: 0o700 });
    const file = join(keysDir, 'hook.keys');
    writeFileSync(file, formatKeyFile('hook', [testKey('hook-old')]), { mode: 0o600 });
    // Owned by the daemon's user (here: nobody), as the README has it; root rewrites it.
    chownSync(file, 65534, 65534);
    const keys = (...args: string[]) => ctl(['--keys-dir', keysDir, ...args]);

    const listed = await keys('--json', 'keys', 'list');
    expect(JSON.parse(listed.out)).toEqual({ peers: [{ peer: 'hook', file, signing: 'hook-old', accepted: ['hook-old'] }] });
    expect((await keys('keys', 'retire', 'hook')).error?.message).toMatch(/one key only/);

    const rotated = await keys('keys', 'rotate', 'hook');
    expect(rotated.error).toBeUndefined();
    const afterRotate = readKeyFile(file);
    expect(afterRotate.map((k) => k.id)).toEqual(['hook-old', expect.stringMatching(/^hook-\d{8}-[0-9a-f]{8}$/)]);
    expect(rotated.out).toContain(`added ${afterRotate[1]!.id}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(file).uid).toBe(65534);
    expect(readdirSync(keysDir)).toEqual(['hook.keys']);
    expect((await keys('keys', 'rotate', 'hook')).error?.message).toMatch(/already has a next key/);

    const retired = await keys('keys', 'retire', 'hook');
    expect(retired.out).toContain(`retired hook-old; ${afterRotate[1]!.id} signs now`);
    expect(readKeyFile(file)).toEqual([afterRotate[1]]);
    expect(statSync(file).uid).toBe(65534);
    expect((await keys('keys', 'rotate', '../etc/passwd')).error?.message).toMatch(/not a peer/);
    // A key file that is a link (to a file the daemon's user wants root to write) is refused, and nothing is written through it.
    const target = join(dir, 'not-a-key-file');
    writeFileSync(target, 'x'.repeat(40), { mode: 0o600 });
    symlinkSync(target, join(keysDir, 'operator.keys'));
    expect((await keys('keys', 'rotate', 'operator')).error?.message).toMatch(/symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('x'.repeat(40));
    expect((await keys('keys', 'rotate', 'agent-dock9')).error?.message).toMatch(/no such key file/);
  });
});
