import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startLab, type Lab } from '../lab/lab.js';
import { OrchestratorApi } from '../support/orchestrator-api.js';
import { measureBurst } from './burst.js';
import { measureDeviceToReachable } from './device.js';
import { Floor } from './floor.js';
import { measureHook } from './hook.js';
import { INGEST_TARGET_PER_SECOND, POSTGRES_INGEST_SHARE, measureIngest } from './ingest.js';
import { postgresMissing, startPostgres, type PostgresServer } from '@unionize/protocol/testing/postgres-server';
import { join } from 'node:path';
import { measureLeaseToReady } from './lease.js';
import { POOL_BURST_DEVICES, measurePool } from './pool.js';
import { rssOf } from './proc.js';
import { measureScale, unionizeRss, type Seeding } from './scale.js';
import { failedFigure, notes, table, verdict, type Figure, type Summary } from './stats.js';

/**
 * npm run bench [-- --quick] [--only burst,lease,device,hook,ingest,scale,pool] [--devices N]
 *                [--sql] [--store postgres] [--scale-seed adopt|events]
 *
 * --store postgres (issue 19): the ingest, scale and RSS figures also with the
 * PostgreSQL store, on a throwaway cluster the bench makes (Debian's
 * postgresql), each beside SQLite's from the same run (so it implies --sql);
 * ingest with PostgreSQL must reach half of SQLite's.
 *
 * The pair (orchestrator + unionize) on the real lab, each figure beside its
 * floor measured in the same run (issue 5). Progress goes to stderr; stdout
 * gets the table, the notes, and as its last line one JSON object. Exit
 * status: 0 when every target is met, 1 when one is missed (each named on
 * stderr with its figure and target, issue 13) or the run failed, 2 for usage.
 */

const PLANS = {
  full: { devices: 100, burstRounds: 1, leaseRuns: 50, deviceRuns: 20, hookRuns: 50, ingestSeconds: 5, ingestRounds: 3, small: 1000, large: 10_000, applyRuns: 40, listRuns: 20, poolLeaseRuns: 30, poolDeviceRuns: 30, poolBurstRounds: 2 },
  quick: { devices: 20, burstRounds: 2, leaseRuns: 25, deviceRuns: 10, hookRuns: 30, ingestSeconds: 5, ingestRounds: 1, small: 1000, large: 10_000, applyRuns: 15, listRuns: 8, poolLeaseRuns: 15, poolDeviceRuns: 15, poolBurstRounds: 1 },
} as const;
const GROUPS = ['burst', 'lease', 'device', 'hook', 'ingest', 'scale', 'pool'] as const;
type Group = (typeof GROUPS)[number];

const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\nusage: npm run bench -- [--quick] [--only ${GROUPS.join(',')}] [--devices N] [--sql] [--store postgres] [--scale-seed adopt|events]\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    devices: { type: 'string' },
    /** Also run the scale and RSS figures with the SQLite store, at the same sizes (seeded by events: about three minutes more). */
    sql: { type: 'boolean', default: false },
    /** postgres: the ingest, scale and RSS figures with PostgreSQL too, beside SQLite's. */
    store: { type: 'string' },
    /** How the scale orchestrator gets its clients: adopt (fast, default) or events (as devices would; slower, one request each). */
    'scale-seed': { type: 'string', default: 'adopt' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) usage('help');
const mode = values.quick ? 'quick' : 'full';
const plan = { ...PLANS[mode] } as { -readonly [K in keyof (typeof PLANS)['full']]: number };
if (values.devices !== undefined) {
  const n = Number(values.devices);
  if (!Number.isInteger(n) || n < 1) usage('--devices must be a positive integer');
  plan.devices = n;
}
const seeding = values['scale-seed'] as Seeding;
if (seeding !== 'adopt' && seeding !== 'events') usage('--scale-seed must be adopt or events');
if (values.store !== undefined && values.store !== 'postgres') usage('--store takes postgres (memory and SQLite are always measured)');
const withPostgres = values.store === 'postgres';
const missingPostgres = withPostgres ? postgresMissing() : null;
if (missingPostgres) usage(`--store postgres: ${missingPostgres}`);
// Beside SQLite's figures of the same run.
const withSqlite = values.sql || withPostgres;
const only = new Set((values.only?.split(',') ?? GROUPS) as Group[]);
for (const g of only) if (!GROUPS.includes(g)) usage(`unknown group ${g}`);

async function phase(figures: Figure[], name: string, target: string, fn: () => Promise<Figure[]>): Promise<void> {
  const t0 = Date.now();
  say(`${name}…`);
  try {
    figures.push(...(await fn()));
  } catch (error) {
    say(`${name} failed: ${(error as Error).stack ?? error}`);
    figures.push(failedFigure(name, target, error));
  }
  say(`${name} done in ${Math.round((Date.now() - t0) / 1000)} s`);
}

async function main(): Promise<number> {
  const started = Date.now();
  const load0 = loadavg();
  const devices = only.has('burst') || only.has('device') ? plan.devices : only.has('pool') ? POOL_BURST_DEVICES : 0;
  say(`${mode} run: ${JSON.stringify(plan)}; starting the lab with ${devices} devices…`);
  const lab: Lab = await startLab({ devices, log: process.env.LAB_VERBOSE ? say : undefined, ...(process.env.BENCH_LOG_DIR ? { logDir: process.env.BENCH_LOG_DIR } : {}) });
  const figures: Figure[] = [];
  const api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  let floor: Floor | undefined;
  let postgres: PostgresServer | undefined;
  try {
    say(`lab up in ${Date.now() - started} ms`);
    const unionizeAtStart = rssOf(lab.daemons.unionize?.pid);
    floor = await Floor.start(lab);
    const stdFloor = floor;
    // The burst first: the orchestrator's new-container quota (120 a minute) is full then.
    if (only.has('burst')) await phase(figures, 'burst', '<= 1.3x floor, none lost', () => measureBurst(lab, api, stdFloor, plan.burstRounds));
    let containerFloor: Summary | undefined;
    if (only.has('lease') || only.has('device')) {
      await phase(figures, 'leaseToReady', '<= floor + 100 ms', async () => {
        const result = await measureLeaseToReady(lab, api, stdFloor, only.has('lease') ? plan.leaseRuns : 5);
        containerFloor = result.floor;
        return only.has('lease') ? result.figures : [];
      });
    }
    if (only.has('device')) {
      await phase(figures, 'deviceToReachable', '<= 1.3x floor', () => {
        if (!containerFloor || containerFloor.n === 0) throw new Error('no container floor (leaseToReady failed)');
        return measureDeviceToReachable(lab, api, containerFloor, plan.deviceRuns);
      });
    }
    if (only.has('hook')) await phase(figures, 'hook', '<= 3x floor', () => measureHook(lab, api, plan.hookRuns));
    // With --store postgres: a cluster of the bench's own, in the lab directory (gone with it), stopped before the lab.
    postgres = withPostgres && (only.has('ingest') || only.has('scale')) ? await startPostgres({ dir: join(lab.dir, 'bench-postgres') }) : undefined;
    if (postgres) say(`${postgres.version} started for --store postgres`);
    if (only.has('ingest')) {
      await phase(figures, 'ingest', `>= ${INGEST_TARGET_PER_SECOND}/s`, () => measureIngest(lab, plan.ingestSeconds, plan.ingestRounds));
      const sqliteRate = figures.find((f) => f.name === 'ingest' && f.metric === 'events/s (SQLite)')?.value;
      const server = postgres;
      if (server) {
        await phase(figures, 'ingest (postgres)', `>= ${POSTGRES_INGEST_SHARE}x SQLite`, () => measureIngest(lab, plan.ingestSeconds, plan.ingestRounds, {
          postgres: { server, database: 'ingest' }, sqliteRate: Number.isFinite(sqliteRate) ? sqliteRate : undefined,
        }));
      }
    }
    if (only.has('scale')) {
      const common = { small: plan.small, large: plan.large, applyRuns: plan.applyRuns, listRuns: plan.listRuns };
      await phase(figures, 'scale', '<= 2x growth', () => measureScale(lab, { ...common, store: 'memory', seeding }));
      // SQLite (the store config/orchestrator.ini ships) only by events, as a durable store does not adopt:
      // at 150-230 clients/s here, about three minutes more for the 30,000 events of the same sizes.
      if (withSqlite) await phase(figures, 'scale (sqlite)', '<= 2x growth', () => measureScale(lab, { ...common, store: 'sqlite', seeding: 'events' }));
      const server = postgres;
      if (server) await phase(figures, 'scale (postgres)', '<= 2x growth', () => measureScale(lab, { ...common, store: 'postgres', seeding: 'events', postgres: { server, database: 'scale' } }));
    }
    figures.push(unionizeRss(lab, unionizeAtStart));
    // Last: the orchestrator restarts with a pool, whose members would sit beside every other figure.
    if (only.has('pool')) {
      const size = Math.min(POOL_BURST_DEVICES, lab.devices.length);
      await phase(figures, 'pool', '<= 0.35x, 0.3x, 1.15x', () => measurePool(lab, api, stdFloor, { size, leaseRuns: plan.poolLeaseRuns, deviceRuns: plan.poolDeviceRuns, burstRounds: plan.poolBurstRounds }, say));
    }
  } finally {
    await floor?.stop().catch((e: Error) => say(`floor worker: ${e.message}`));
    await postgres?.stop().catch((e: Error) => say(`postgres: ${e.message}`));
    await api.close().catch(() => undefined);
    await lab.stop().catch((e: Error) => say(`lab teardown: ${e.message}`));
  }

  const failed = figures.filter((f) => f.pass === false);
  const outcome = verdict(figures);
  const report = {
    bench: 'unionize',
    mode,
    ok: outcome.ok,
    failed: failed.map((f) => `${f.name} ${f.metric}`),
    durationMs: Date.now() - started,
    machine: { cpus: cpus().length, node: process.version, loadavgBefore: load0.map((l) => Math.round(l * 100) / 100), loadavgAfter: loadavg().map((l) => Math.round(l * 100) / 100) },
    plan,
    labStartMs: lab.timings,
    figures,
  };
  process.stdout.write(`\n${table(figures)}\n\nnotes:\n${notes(figures)}\n\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  say(`done in ${Math.round(report.durationMs / 1000)} s; ${outcome.missed.length} target(s) not met`);
  for (const line of outcome.missed) say(`target missed: ${line}`);
  return outcome.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.stdout.write(`${JSON.stringify({ bench: 'unionize', mode, ok: false, error: error instanceof Error ? error.message : String(error), figures: [] })}\n`);
    process.exit(1);
  },
);
