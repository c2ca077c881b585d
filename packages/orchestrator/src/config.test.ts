import { describe, expect, it } from 'vitest';
import { parseConfig } from '@unionize/protocol';
import { orchestratorConfigSchema, quotaLimits } from './config.js';
import { DEFAULT_QUOTAS } from './lifecycle/quotas.js';
import { DEFAULT_MEMORY_EVENTS, DEFAULT_SQL_CACHE_MB } from './store/types.js';

const base = `[server]
cert = /c
key = /k
[auth]
keys_dir = /k
[addressing]
prefix = fd00:3::/64
`;

describe('orchestrator config', () => {
  it('takes an agent with a CA, a pin, or both, and none without either', () => {
    const pin = `sha256/${Buffer.alloc(32).toString('base64')}`;
    expect(parseConfig(`${base}[agents.a]\nurl = https://a:9443\nca = /ca\n`, orchestratorConfigSchema).agents.a).toMatchObject({ ca: '/ca' });
    expect(parseConfig(`${base}[agents.a]\nurl = https://a:9443\npin = ${pin}\n`, orchestratorConfigSchema).agents.a).toMatchObject({ pin });
    expect(() => parseConfig(`${base}[agents.a]\nurl = https://a:9443\n`, orchestratorConfigSchema, 'o.ini')).toThrow(
      /^config o.ini: \[agents\.a\] ca: give ca/,
    );
  });

  it('has quota defaults, reads [quotas], and refuses unknown or negative keys', () => {
    const agents = '[agents.a]\nurl = https://a:9443\nca = /ca\n';
    expect(quotaLimits(parseConfig(base + agents, orchestratorConfigSchema))).toEqual(DEFAULT_QUOTAS);
    const set = parseConfig(`${base}${agents}[quotas]\nmax_instances = 10\nmax_per_mac = 0\nnew_clients_per_minute = 5\n`, orchestratorConfigSchema);
    expect(quotaLimits(set)).toMatchObject({ maxInstances: 10, maxPerMac: 0, newClientsPerMinute: 5 });
    expect(() => parseConfig(`${base}${agents}[quotas]\nmax_per_dog = 1\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[quotas\]|quotas/);
    expect(() => parseConfig(`${base}${agents}[quotas]\nmax_per_mac = -1\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[quotas\] max_per_mac/);
  });

  it('takes a PostgreSQL store without a password in its URL, never beside SQLite, and the pair\'s URLs as a list', () => {
    const agents = '[agents.a]\nurl = https://a:9443\nca = /ca\n';
    const config = parseConfig(`${base}${agents}[store]\nurl = postgres://orch@/unionize?host=/run/postgresql\npassword_file = /etc/orchestrator/pg.password\n[pair]\nname = orch-a\nurls = https://a:8443, https://b:8443\n`, orchestratorConfigSchema);
    expect(config.store).toMatchObject({ url: 'postgres://orch@/unionize?host=/run/postgresql', password_file: '/etc/orchestrator/pg.password', pool_size: 8 });
    expect(config.pair).toMatchObject({ name: 'orch-a', urls: ['https://a:8443', 'https://b:8443'], retry_ms: 1000 });
    expect(() => parseConfig(`${base}${agents}[store]\nurl = postgres://orch:hunter2@db/unionize\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[store\] url: must not hold a password/);
    expect(() => parseConfig(`${base}${agents}[store]\nurl = mysql://db/unionize\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[store\] url: must be a postgres:\/\/ URL/);
    expect(() => parseConfig(`${base}${agents}[store]\nurl = postgres://db/u\n[sql]\nenabled = true\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/choose one store/);
    expect(() => parseConfig(`${base}${agents}[pair]\nurls = http://a:8443\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[pair.urls\] 0: each must be an https:\/\/ URL/);
  });

  it('bounds the in-memory journal by [sql] memory_events', () => {
    const agents = '[agents.a]\nurl = https://a:9443\nca = /ca\n';
    expect(parseConfig(base + agents, orchestratorConfigSchema).sql.memory_events).toBe(DEFAULT_MEMORY_EVENTS);
    expect(parseConfig(`${base}${agents}[sql]\nmemory_events = 500\n`, orchestratorConfigSchema).sql).toMatchObject({ enabled: false, memory_events: 500 });
    expect(() => parseConfig(`${base}${agents}[sql]\nmemory_events = 10\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[sql\] memory_events/);
  });

  it('sizes the SQLite page cache by [sql] cache_mb, at least 1 MiB', () => {
    const agents = '[agents.a]\nurl = https://a:9443\nca = /ca\n';
    expect(parseConfig(base + agents, orchestratorConfigSchema).sql.cache_mb).toBe(DEFAULT_SQL_CACHE_MB);
    expect(parseConfig(`${base}${agents}[sql]\nenabled = true\ncache_mb = 32\n`, orchestratorConfigSchema).sql).toMatchObject({ enabled: true, cache_mb: 32 });
    expect(() => parseConfig(`${base}${agents}[sql]\ncache_mb = 0\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[sql\] cache_mb/);
  });

  it('keeps gone clients [retention] gone_days, 7 unless told', () => {
    const agents = '[agents.a]\nurl = https://a:9443\nca = /ca\n';
    expect(parseConfig(base + agents, orchestratorConfigSchema).retention).toEqual({ gone_days: 7, interval_seconds: 3600 });
    expect(parseConfig(`${base}${agents}[retention]\ngone_days = 0.5\n`, orchestratorConfigSchema).retention.gone_days).toBe(0.5);
    expect(() => parseConfig(`${base}${agents}[retention]\ngone_days = -1\n`, orchestratorConfigSchema, 'o.ini')).toThrow(/\[retention\] gone_days/);
  });
});
