import { HOOK_PEER, OPERATOR_PEER, peerKeyFile, readKeyFile, type EventOutcomeKind } from '@unionize/protocol';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type DeviceLease, type Lab } from './lab/lab.js';
import { run } from './lab/process.js';
import { repoRoot } from './lab/repo.js';
import { getWithBearer } from './support/bearer-get.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * The operator's side, on one lab (issue 6): the live dashboard in headless
 * Chromium (Debian's chromium driven by playwright-core; no browser
 * download) with its charts (issue 13), orchestratorctl against the running
 * orchestrator, /metrics on both daemons, and one request id from the hook's
 * event to unionize's log.
 */
const CHROMIUM = '/usr/bin/chromium';
const chromiumMissing = (() => {
  try {
    readFileSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is missing (Debian package chromium; scripts/install-deps.sh installs it as root)`;
  }
})();
const skipReason = labSkipReason({ daemons: true, hook: true }) ?? (process.env.CI === 'true' ? null : chromiumMissing);
if (process.env.CI === 'true' && chromiumMissing) throw new Error(`CI=true and the dashboard test cannot run: ${chromiumMissing}`);
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const ARTIFACTS = join(repoRoot(), 'test-artifacts');
/** The series' colours in the dashboard's charts (page.ts: COLORS). */
const INK = { devices: '#4fb3ff', containers: '#3fb950', p50: '#4fb3ff', p95: '#d29922' };

/**
 * In the page: how many opaque pixels of each colour a chart's canvas holds
 * (axes and grid are drawn in other colours, so these are the data), or null
 * without a canvas. A string, not a function: vitest's transform may wrap a
 * function in helpers the page does not have.
 */
function inkScript(chart: string, colors: string[]): string {
  return `(() => {
    const canvas = document.querySelector(${JSON.stringify(`#${chart} canvas`)});
    if (!canvas || !canvas.width || !canvas.height) return null;
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    const targets = ${JSON.stringify(colors)}.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
    const counts = targets.map(() => 0);
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] < 200) continue;
      targets.forEach((t, k) => { if (Math.abs(data[i] - t[0]) + Math.abs(data[i + 1] - t[1]) + Math.abs(data[i + 2] - t[2]) < 48) counts[k] += 1; });
    }
    return { width: canvas.width, height: canvas.height, counts };
  })()`;
}
const CTL = join(repoRoot(), 'packages', 'ctl', 'dist', 'main.js');


describe.skipIf(skipReason)('operator experience: dashboard, orchestratorctl, metrics, request ids', () => {
  let lab: Lab;
  let api: OrchestratorApi;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const leases: DeviceLease[] = [];
  /** What the page said went wrong: script errors, CSP or integrity refusals. */
  const pageProblems: string[] = [];

  const ctl = (...args: string[]) =>
    run([process.execPath, CTL, '--config', join(lab.dir, 'orchestrator.ini'), '--url', lab.orchestratorUrl, ...args], { timeoutMs: 30_000 });

  beforeAll(async () => {
    lab = await startLab({ devices: 2 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
    profile = mkdtempSync(join(tmpdir(), 'unionize-chromium-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      // The lab's CA is made per run; trusting it in an NSS db would buy nothing here.
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 800 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageProblems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|integrity|uPlot|chart/i.test(message.text())) pageProblems.push(message.text());
    });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await api?.close();
    await lab?.stop();
  });

  it('the dashboard wants the operator token, then shows a device the moment it leases, without a reload', async () => {
    await page.goto(`${lab.orchestratorUrl}/dashboard`);
    await page.fill('#token', 'not-the-token-at-all-not-the-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('[role=alert]').textContent()).toContain('not the operator token');

    await page.fill('#token', readFileSync(lab.dashboardTokenFile, 'utf8').trim());
    await page.click('button[type=submit]');
    await page.waitForSelector('#live.on', { timeout: 15_000 });
    const cookies = await context.cookies(`${lab.orchestratorUrl}/dashboard`);
    expect(cookies.find((c) => c.name === 'dashboard_session')).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    expect(page.url()).not.toContain('token');
    // A marker that a reload would wipe.
    await page.evaluate('window.stillHere = true');

    leases.push(await lab.lease(1));
    const row = page.locator('#device-rows tr', { hasText: 'lab-dev-1' });
    await row.waitFor({ timeout: 30_000 });
    await expect.poll(() => row.locator('.state').textContent(), { timeout: 60_000 }).toBe('ready');
    const client = await api.waitForClient(leases[0]!.duid, (c) => c.state === 'ready');
    expect(await row.textContent()).toContain(client.instance!.containerName);
    expect(await row.textContent()).toContain(leases[0]!.address);

    leases.push(await lab.lease(2));
    await expect.poll(() => page.locator('#device-rows tr', { hasText: 'lab-dev-2' }).locator('.state').textContent(), { timeout: 60_000 }).toBe('ready');
    await expect.poll(() => page.locator('[data-agent=dock1]').textContent()).toContain('2 containers');
    expect(await page.evaluate('window.stillHere')).toBe(true);
    await expect.poll(() => page.locator('#event-list li').count()).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    // On a phone: rows become cards, nothing needs horizontal scrolling.
    await page.setViewportSize({ width: 390, height: 844 });
    // The charts follow the new width on their next frame (a ResizeObserver): until then the page is as wide as before.
    await expect.poll(() => page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as Promise<number>, { timeout: 10_000 }).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('the dashboard charts the last hour: devices and containers, and lease→ready p50/p95, with uPlot from the orchestrator', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(await page.evaluate('typeof uPlot')).toBe('function');
    const scripts = (await page.evaluate('[...document.scripts].map((s) => s.src).filter(Boolean)')) as string[];
    expect(scripts).toHaveLength(1);
    expect(new URL(scripts[0]!).origin).toBe(new URL(lab.orchestratorUrl).origin);
    // The captions: the newest counts, and lease→ready in the newest minute a client became ready in.
    await expect.poll(() => page.locator('#now-devices').textContent(), { timeout: 30_000 }).toBe('2');
    await expect.poll(() => page.locator('#now-containers').textContent(), { timeout: 30_000 }).toBe('2');
    await expect.poll(() => page.locator('#now-p95').textContent(), { timeout: 30_000 }).toMatch(/^\d+(\.\d)? s$/);

    type Ink = { width: number; height: number; counts: number[] } | null;
    const fleet = () => page.evaluate(inkScript('chart-fleet', [INK.devices, INK.containers])) as Promise<Ink>;
    const latency = () => page.evaluate(inkScript('chart-latency', [INK.p50, INK.p95])) as Promise<Ink>;
    // Lines and points in each series' colour: the data drew, not only the axes.
    await expect.poll(async () => Math.min(...((await fleet())?.counts ?? [0])), { timeout: 15_000 }).toBeGreaterThanOrEqual(8);
    await expect.poll(async () => Math.min(...((await latency())?.counts ?? [0])), { timeout: 15_000 }).toBeGreaterThanOrEqual(8);
    for (const ink of [await fleet(), await latency()]) {
      expect(ink!.width).toBeGreaterThan(300);
      expect(ink!.height).toBeGreaterThan(100);
    }
    expect(pageProblems).toEqual([]);
    await page.locator('#charts').screenshot({ path: join(ARTIFACTS, 'dashboard-charts.png') });
  });

  it('orchestratorctl clients lists the lab devices with their containers (table and --json)', async () => {
    const table = await ctl('clients');
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^CLIENT\s+STATE\s+HOSTNAME\s+DEVICE ADDRESS\s+CONTAINER\s+CONTAINER ADDRESS\s+AGENT\s+SEEN$/);
    const clients = await api.clients();
    for (const lease of leases) {
      const client = clients.find((c) => c.duid === lease.duid)!;
      const line = lines.find((l) => l.startsWith(client.id));
      expect(line, `a row for ${lease.duid}`).toMatch(new RegExp(`ready\\s+lab-dev-\\d\\s+${lease.address}\\s+${client.instance!.containerName}\\s+${client.instance!.address.split('/')[0]}\\s+dock1`));
    }
    const json = await ctl('--json', 'clients');
    expect(JSON.parse(json.stdout).clients.map((c: { duid: string }) => c.duid).sort()).toEqual(leases.map((l) => l.duid).sort());

    const agents = await ctl('agents');
    expect(agents.stdout).toMatch(/^dock1\s+healthy\s+2\s/m);
    const shown = await ctl('show', 'lab-dev-1');
    expect(shown.stdout).toMatch(/^state\s+ready/m);
    const events = await ctl('events', '--limit', '5');
    expect(events.stdout).toMatch(/add\s+\S+\s+[0-9a-f]{20}\s+provisioned/);
  });

  it('orchestratorctl deprovision removes a container, and the dashboard shows it gone live', async () => {
    const done = await ctl('deprovision', 'lab-dev-2');
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain('deprovisioning queued');
    await expect.poll(() => page.locator('#device-rows tr', { hasText: 'lab-dev-2' }).locator('.state').textContent(), { timeout: 30_000 }).toBe('gone');
  });

  it('orchestratorctl says in one line when it is refused or nothing listens', async () => {
    // The operator's key id with another secret: a bad signature.
    const operatorKeys = peerKeyFile(lab.keysDir, OPERATOR_PEER);
    const wrongKey = join(lab.dir, 'wrong.keys');
    writeFileSync(wrongKey, `${readKeyFile(operatorKeys)[0]!.id} ${'0'.repeat(64)}\n`, { mode: 0o600 });
    const refused = await run([process.execPath, CTL, '--url', lab.orchestratorUrl, '--key-file', wrongKey, '--ca', lab.caFile, 'clients']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(/^orchestratorctl: the orchestrator refused the request \(401 UNAUTHENTICATED: bad signature\)/);
    // The hook's key is the hook's: it may post lease events, not list clients.
    const hookKeyed = await run([process.execPath, CTL, '--url', lab.orchestratorUrl, '--key-file', peerKeyFile(lab.keysDir, HOOK_PEER), '--ca', lab.caFile, 'clients']);
    expect(hookKeyed.code).toBe(1);
    expect(hookKeyed.stderr.trim()).toMatch(/^orchestratorctl: the orchestrator refused the request \(403 FORBIDDEN: key hook-[0-9a-z-]+ \(hook\) may not GET \/v1\/clients\)/);
    const down = await run([process.execPath, CTL, '--url', `https://[${lab.addresses.mgmtOrch}]:1`, '--key-file', operatorKeys, '--ca', lab.caFile, 'clients']);
    expect(down.code).toBe(1);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
    expect(down.stderr).toMatch(/cannot reach the orchestrator .*connection refused/);
  });

  it('/metrics on both daemons, with a bearer token', async () => {
    const token = readFileSync(lab.metricsTokenFile, 'utf8').trim();
    expect((await getWithBearer(`${lab.orchestratorUrl}/metrics`, lab.caFile, 'wrong')).status).toBe(401);
    const orch = await getWithBearer(`${lab.orchestratorUrl}/metrics`, lab.caFile, token);
    expect(orch.status).toBe(200);
    expect(orch.body).toMatch(/^orchestrator_lease_events_total\{action="add",outcome="provisioned"\} [2-9]/m);
    expect(orch.body).toMatch(/^orchestrator_provision_duration_seconds_count\{result="ok"\} [2-9]/m);
    expect(orch.body).toMatch(/^orchestrator_clients\{state="ready"\} 1$/m);
    expect(orch.body).toMatch(/^orchestrator_agent_up\{agent="dock1"\} 1$/m);
    expect(orch.body).toMatch(/^orchestrator_hook_spool_depth\{server="devnet"\} 0$/m);
    // unionize listens on the transit link, reachable from the orchestrator's namespace.
    const uni = await lab.run(lab.names.orch, [
      'curl', '-sS', '-g', '--noproxy', '*', '--max-time', '5', '--cacert', lab.caFile, '-H', `authorization: Bearer ${token}`, `${lab.unionizeUrl}/metrics`,
    ]);
    expect(uni.stdout).toMatch(/^unionize_docker_up 1$/m);
    expect(uni.stdout).toMatch(/^unionize_containers\{state="running"\} 1$/m);
    expect(uni.stdout).toMatch(/^unionize_http_requests_total\{method="POST",route="\/v1\/containers",status="201"\} 2$/m);
  });

  it("one request id (the event's id) from the hook's event to unionize's log", async () => {
    const { events } = await api.get<{ events: Array<{ eventId: string; action: string; outcomeKind: EventOutcomeKind | null; address: string }> }>('/v1/events?limit=100');
    const add = events.find((e) => e.action === 'add' && e.outcomeKind === 'provisioned' && e.address === leases[0]!.address)!;
    expect(add).toBeDefined();
    const orchestratorLog = readFileSync(join(lab.logDir, 'orchestrator.log'), 'utf8');
    const unionizeLog = readFileSync(join(lab.logDir, 'unionize.log'), 'utf8');
    const mentions = (log: string) => log.split('\n').filter((l) => l.includes(`"requestId":"${add.eventId}"`));
    expect(mentions(orchestratorLog).some((l) => l.includes('client pending → provisioning') || l.includes('provisioning'))).toBe(true);
    expect(mentions(unionizeLog).some((l) => l.includes('"path":"/v1/containers"'))).toBe(true);
  });
});
