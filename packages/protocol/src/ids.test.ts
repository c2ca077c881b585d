import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { clientIdOf, containerNameOf } from './ids.js';

describe('clientIdOf', () => {
  // Ids are stored and put in container names and labels: they must never change.
  it('is the first 20 hex digits of SHA-256 over server, DUID and IAID joined by NUL', () => {
    expect(clientIdOf('devnet', '00:03:00:01:02:aa:bb:cc:dd:ee', '12')).toBe('a566329eb7f1950048ac');
    for (const [server, duid, iaid] of [['a', 'b', 'c'], ['devnet', '00:01:00:01:2c:00:00:00:02:00:00:00:00:01', 'T4294967295']] as const) {
      expect(clientIdOf(server, duid, iaid)).toBe(createHash('sha256').update(`${server}\0${duid}\0${iaid}`).digest('hex').slice(0, 20));
    }
    expect(containerNameOf(clientIdOf('devnet', '00:03:00:01:02:aa:bb:cc:dd:ee', '12'))).toBe('dev-a566329eb7f1');
  });
});
