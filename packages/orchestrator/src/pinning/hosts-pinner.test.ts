import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { HostsPinner } from './hosts-pinner.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

describe('HostsPinner', () => {
  it('writes one dnsmasq dhcp-host line per device, atomically, only when it changes', () => {
    const dir = join(makeTempDir('pins-'), 'hosts.d');
    const pinner = new HostsPinner({ dir, log: pino({ level: 'silent' }) });
    const client = { id: '0123456789abcdef0123', duid: '00:01:00:01:aa:bb', address: 'fd00:1::1234' };
    pinner.pin(client);
    pinner.pin(client);
    expect(readdirSync(dir)).toEqual([client.id]);
    expect(readFileSync(join(dir, client.id), 'utf8')).toBe('id:00:01:00:01:aa:bb,[fd00:1::1234]\n');
    pinner.pin({ ...client, address: 'fd00:1::99' });
    expect(readFileSync(join(dir, client.id), 'utf8')).toBe('id:00:01:00:01:aa:bb,[fd00:1::99]\n');
    expect(() => pinner.pin({ ...client, id: '../../etc/passwd' })).toThrow(/not a client id/);
  });
});
