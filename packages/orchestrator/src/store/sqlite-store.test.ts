import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeStore } from './store.contract.js';
import { SqliteStore } from './sqlite-store.js';

describeStore('SqliteStore', () => new SqliteStore({ path: ':memory:', prefix: 'fd00:3::/64' }));

describe('SqliteStore on a file', () => {
  it('keeps everything across a reopen, with WAL', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'state.db');
    const first = new SqliteStore({ path, prefix: 'fd00:3::/64' });
    const eventId = randomUUID();
    first.appendEvent({
      eventId,
      clientId: 'c1',
      receivedAt: 't',
      appliedAt: null,
      outcome: null,
      event: { eventId, server: 'devnet', role: 'device', action: 'add', duid: '00:01:02', iaid: '1', address: 'fd00:1::1', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: '2026-01-01T00:00:00.000Z' },
    });
    expect(first.allocateAddress('c1')).toBe('fd00:3::100');
    first.close();
    const second = new SqliteStore({ path, prefix: 'fd00:3::/64' });
    expect(second.unappliedEvents().map((e) => e.eventId)).toEqual([eventId]);
    expect(second.allocateAddress('c2')).toBe('fd00:3::101');
    second.close();
  });
});
