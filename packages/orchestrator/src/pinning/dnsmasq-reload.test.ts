import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { DnsmasqReload } from './dnsmasq-reload.js';

const log = pino({ level: 'silent' });

describe('DnsmasqReload', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('reloads at once, then at most once per interval however many requests come in it', () => {
    vi.useFakeTimers();
    const file = join(makeTempDir('reload-'), 'dnsmasq.reload');
    const reload = new DnsmasqReload({ requestFile: file, intervalMs: 30_000, log });
    reload.request();
    expect(reload.reloads).toBe(1);
    expect(readFileSync(file, 'utf8')).toMatch(/ 1\n$/);
    for (let i = 0; i < 500; i++) reload.request();
    expect(reload.reloads).toBe(1);
    vi.advanceTimersByTime(29_999);
    expect(reload.reloads).toBe(1);
    vi.advanceTimersByTime(1);
    expect(reload.reloads).toBe(2);
    expect(readFileSync(file, 'utf8')).toMatch(/ 2\n$/);
    // A quiet interval: no reload at its end; the next request reloads at once again.
    vi.advanceTimersByTime(60_000);
    expect(reload.reloads).toBe(2);
    reload.request();
    expect(reload.reloads).toBe(3);
    reload.close();
  });

  it('makes a waiting request at close, and none when nothing waits', () => {
    vi.useFakeTimers();
    const reload = new DnsmasqReload({ requestFile: join(makeTempDir('reload-'), 'r'), intervalMs: 30_000, log });
    reload.request();
    reload.close();
    expect(reload.reloads).toBe(1);
    reload.request();
    reload.request();
    reload.close();
    expect(reload.reloads).toBe(3);
  });

  it('sends SIGHUP to the pid in the pid file, and only logs when there is none to signal', () => {
    const dir = makeTempDir('reload-');
    const pidFile = join(dir, 'dnsmasq.pid');
    writeFileSync(pidFile, '4242\n');
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    const warn = vi.fn();
    const reload = new DnsmasqReload({ pidFile, intervalMs: 10, log: { warn } as unknown as typeof log });
    reload.request();
    expect(kill).toHaveBeenCalledWith(4242, 'SIGHUP');
    reload.close();
    writeFileSync(pidFile, '1\n');
    const again = new DnsmasqReload({ pidFile, intervalMs: 10, log: { warn } as unknown as typeof log });
    again.request();
    again.close();
    expect(kill).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
