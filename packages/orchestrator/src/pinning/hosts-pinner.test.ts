import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { HostsPinner, livePins } from './hosts-pinner.js';
import type { DnsmasqReload } from './dnsmasq-reload.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import type { ClientRecord } from '../store/types.js';

const log = pino({ level: 'silent' });
/** Counts the reloads the pinner asks for. */
function countingReload(): DnsmasqReload & { count: number } {
  const reload = { count: 0, request: () => void reload.count++ };
  return reload as unknown as DnsmasqReload & { count: number };
}
const files = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((name) => [name, readFileSync(join(dir, name), 'utf8')]));

describe('HostsPinner', () => {
  it('writes one dnsmasq dhcp-host line per device, atomically, only when it changes, and removes it on unpin', () => {
    const dir = join(makeTempDir('pins-'), 'hosts.d');
    const reload = countingReload();
    const pinner = new HostsPinner({ dir, log, reload });
    const client = { id: '0123456789abcdef0123', duid: '00:01:00:01:aa:bb', address: 'fd00:1::1234' };
    pinner.pin(client);
    pinner.pin(client);
    expect(readdirSync(dir)).toEqual([client.id]);
    expect(readFileSync(join(dir, client.id), 'utf8')).toBe('id:00:01:00:01:aa:bb,[fd00:1::1234]\n');
    // dnsmasq reads a new file by itself: no reload.
    expect(reload.count).toBe(0);
    pinner.pin({ ...client, address: 'fd00:1::99' });
    expect(readFileSync(join(dir, client.id), 'utf8')).toBe('id:00:01:00:01:aa:bb,[fd00:1::99]\n');
    // It keeps a changed file's old entry until it re-reads the directory.
    expect(reload.count).toBe(1);
    expect(() => pinner.pin({ ...client, id: '../../etc/passwd' })).toThrow(/not a client id/);
    pinner.unpin(client.id);
    pinner.unpin(client.id);
    expect(readdirSync(dir)).toEqual([]);
    expect(reload.count).toBe(2);
    expect(() => pinner.unpin('../x')).toThrow(/not a client id/);
  });

  it('writes an ignore entry per banned device (by MAC or DUID, however long) and removes it on unban', () => {
    const dir = join(makeTempDir('pins-'), 'hosts.d');
    const reload = countingReload();
    const pinner = new HostsPinner({ dir, log, reload });
    const longDuid = Array.from({ length: 130 }, (_, i) => (i % 256).toString(16).padStart(2, '0')).join(':');
    pinner.ban({ kind: 'mac', value: '52:54:00:00:00:01' });
    pinner.ban({ kind: 'duid', value: longDuid });
    expect(Object.values(files(dir)).sort()).toEqual(['52:54:00:00:00:01,ignore\n', `id:${longDuid},ignore\n`]);
    expect(Object.keys(files(dir)).every((name) => /^ban-(mac|duid)-[0-9a-f]{20}$/.test(name))).toBe(true);
    expect(reload.count).toBe(0);
    pinner.unban({ kind: 'mac', value: '52:54:00:00:00:01' });
    expect(Object.values(files(dir))).toEqual([`id:${longDuid},ignore\n`]);
    // A lifted ban stays in force in dnsmasq until it re-reads the directory.
    expect(reload.count).toBe(1);
    expect(() => pinner.ban({ kind: 'mac', value: '52:54:00:00:00:01\nid:*' })).toThrow(/not a MAC or DUID/);
  });

  it('brings the directory to exactly the pins and bans given, leaving files of other names alone', () => {
    const dir = join(makeTempDir('pins-'), 'hosts.d');
    const reload = countingReload();
    const pinner = new HostsPinner({ dir, log, reload });
    const live = { id: '00000000000000000001', duid: '00:01:01', address: 'fd00:1::1' };
    pinner.pin({ id: '00000000000000000002', duid: '00:01:02', address: 'fd00:1::2' });
    pinner.ban({ kind: 'mac', value: '52:54:00:00:00:01' });
    writeFileSync(join(dir, 'operator-hosts'), 'id:00:01:09,[fd00:1::9]\n');
    expect(pinner.sync([live], [{ kind: 'duid', value: '00:01:03' }], { keepPins: true })).toEqual({ written: 2, removed: 1 });
    expect(Object.keys(files(dir))).toHaveLength(4);
    expect(reload.count).toBe(1);
    expect(pinner.sync([live], [{ kind: 'duid', value: '00:01:03' }])).toEqual({ written: 0, removed: 1 });
    expect(reload.count).toBe(2);
    expect(pinner.sync([live], [{ kind: 'duid', value: '00:01:03' }])).toEqual({ written: 0, removed: 0 });
    expect(reload.count).toBe(2);
    expect(Object.values(files(dir)).sort()).toEqual(['id:00:01:01,[fd00:1::1]\n', 'id:00:01:03,ignore\n', 'id:00:01:09,[fd00:1::9]\n']);
  });

  it('pins every device client not gone and not banned', () => {
    const client = (id: string, over: Partial<ClientRecord>) => ({ id, role: 'device', state: 'ready', duid: `00:01:${id}`, ...over }) as ClientRecord;
    const clients = [client('01', {}), client('02', { state: 'gone' }), client('03', { state: 'failed' }), client('04', { role: 'instance' }), client('05', {})];
    expect(livePins(clients, (c) => c.id === '05').map((c) => c.id)).toEqual(['01', '03']);
  });
});
