import { describe, expect, it } from 'vitest';
import { packRetired, retiredAt, unpackRetired } from './retired-pack.js';
import { CLIENT_STATES, type ClientRecord, type TransitionRecord } from './types.js';

const retired = (over: Partial<ClientRecord> = {}): ClientRecord => ({
  id: '3f2a9c0d11e4b7a8',
  server: 'dnsmasq-devnet',
  role: 'device',
  duid: '00:03:00:01:02:00:00:00:12:34',
  iaid: '1234',
  address: 'fd00:1:2:3::1234',
  hostname: 'device-1234',
  mac: '02:00:00:00:12:34',
  state: 'gone',
  desired: 'removed',
  stateReason: 'lease released (del)',
  expiresAt: '2026-12-05T07:00:00.000Z',
  profile: null,
  ttlExpiresAt: null,
  cooldownUntil: null,
  firstSeen: '2026-12-05T06:00:00.000Z',
  lastSeen: '2026-12-05T06:30:00.123Z',
  updatedAt: '2026-12-05T06:31:00.456Z',
  ...over,
});

const transition = (clientId: string, i: number, over: Partial<TransitionRecord> = {}): TransitionRecord => ({
  clientId,
  from: CLIENT_STATES[i % CLIENT_STATES.length]!,
  to: CLIENT_STATES[(i + 1) % CLIENT_STATES.length]!,
  reason: `step ${i}`,
  at: new Date(Date.UTC(2026, 11, 5, 6, 0, i)).toISOString(),
  ...over,
});

/** A string from a small alphabet that has what JSON escapes, commas, quotes and characters beyond Latin-1. */
function oddString(random: () => number): string {
  const alphabet = ['a', 'Z', '0', ',', '"', '\\', '\n', '\u0000', 'é', '🙂', ' ', '[', ']', ':'];
  return Array.from({ length: Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
}

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function generator(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('packRetired / unpackRetired', () => {
  it('gives back what went in: the record and its transitions, oldest first', () => {
    const client = retired();
    const transitions = [0, 1, 2, 3].map((i) => transition(client.id, i));
    expect(unpackRetired(client.id, packRetired(client, transitions))).toEqual({ client, transitions });
    expect(unpackRetired(client.id, packRetired(client, []))).toEqual({ client, transitions: [] });
  });

  it('keeps canonical timestamps as milliseconds and any other string as it is', () => {
    const client = retired({ expiresAt: '2026-12-05T07:00:00Z', lastSeen: 'not a time', firstSeen: '2026-12-05T06:00:00.000+00:00' });
    const packed = packRetired(client, [transition(client.id, 0, { at: '2026-12-05T06:00:00.5Z' })]);
    expect(packed).toContain(String(Date.parse(client.updatedAt)));
    expect(packed).not.toContain(client.updatedAt);
    expect(unpackRetired(client.id, packed).client).toEqual(client);
    expect(unpackRetired(client.id, packed).transitions[0]!.at).toBe('2026-12-05T06:00:00.5Z');
  });

  it('round-trips records of attacker-chosen strings (1,000 random ones)', () => {
    for (let seed = 1; seed <= 1000; seed++) {
      const random = generator(seed);
      const maybe = (): string | null => (random() < 0.3 ? null : oddString(random));
      const client = retired({ hostname: maybe(), mac: maybe(), stateReason: oddString(random), profile: maybe(), duid: oddString(random), updatedAt: random() < 0.5 ? oddString(random) : new Date(Math.floor(random() * 4e12)).toISOString() });
      const transitions = Array.from({ length: Math.floor(random() * 11) }, (_, i) => transition(client.id, i, { reason: oddString(random), at: random() < 0.5 ? oddString(random) : new Date(Math.floor(random() * 4e12)).toISOString() }));
      const packed = packRetired(client, transitions);
      expect(unpackRetired(client.id, packed), `seed ${seed}`).toEqual({ client, transitions });
      expect(retiredAt(packed), `seed ${seed}`).toBe(client.updatedAt);
    }
  });

  it('is a fraction of the record as JSON', () => {
    const client = retired();
    const transitions = [0, 1, 2, 3].map((i) => transition(client.id, i));
    const asObjects = JSON.stringify({ client, transitions });
    expect(packRetired(client, transitions).length).toBeLessThan(asObjects.length * 0.6);
  });

  it('refuses a string it did not pack', () => {
    expect(() => unpackRetired('x', '[{}]')).toThrow(/unexpected value/);
    const packed = JSON.parse(packRetired(retired(), [transition('x', 0)])) as unknown[];
    packed[packed.length - 4] = 99;
    expect(() => unpackRetired('x', JSON.stringify(packed))).toThrow(/no state at index 99/);
  });
});
