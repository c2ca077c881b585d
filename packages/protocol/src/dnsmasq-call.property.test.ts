import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHookCall } from './dnsmasq-call.js';
import { hostnameSchema, leaseEventSchema } from './lease-event.js';

/**
 * Property tests: parseHookCall gets whatever dnsmasq passes on from the
 * network (argv and environment). It must never throw, and whatever event it
 * returns must pass the strict schema the orchestrator applies.
 */
const ctx = { server: 'devnet', role: 'device' as const, now: new Date('2026-01-01T00:00:00Z'), newId: () => '6f9619ff-8b86-4d01-b42d-00cf4fc964ff' };

const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.constantFrom('$(touch /tmp/pwned)', ';reboot', '../../etc', '`id`', 'a\nb', 'x'.repeat(300), 'ünïcode', '-rf', '%s%n', '\u0000', ''),
);
const plausibleDuid = fc.uint8Array({ minLength: 1, maxLength: 140 }).map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':'));
const plausibleAddress = fc.oneof(fc.ipV6(), fc.ipV4(), hostile);
const action = fc.oneof(fc.constantFrom('add', 'old', 'del', 'init', 'tftp', 'arp-add'), hostile);
const envValue = fc.option(fc.oneof(hostile, fc.constantFrom('1', 'T7', '0', '4294967295', '4294967296', '02:aa:bb:cc:dd:ee', '1:02:aa:bb:cc:dd:ee', '1767229200')), { nil: undefined });

describe('parseHookCall under random input', () => {
  it('never throws, and every event it returns re-validates strictly', () => {
    fc.assert(
      fc.property(
        fc.tuple(action, fc.oneof(plausibleDuid, hostile), plausibleAddress, fc.option(hostile, { nil: undefined })),
        fc.record({
          DNSMASQ_IAID: envValue,
          DNSMASQ_MAC: envValue,
          DNSMASQ_INTERFACE: envValue,
          DNSMASQ_LEASE_EXPIRES: envValue,
          DNSMASQ_LEASE_LENGTH: envValue,
          DNSMASQ_DATA_MISSING: envValue,
        }),
        (argv, env) => {
          const call = parseHookCall(argv.filter((a): a is string => a !== undefined), env, ctx);
          if (call.kind !== 'event') {
            expect(typeof call.reason).toBe('string');
            expect(call.reason.length).toBeLessThan(400);
            return;
          }
          expect(leaseEventSchema.parse(call.event)).toEqual(call.event);
          if (call.event.hostname !== null) expect(hostnameSchema.safeParse(call.event.hostname).success).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('keeps a valid call an event whatever hostname comes with it, and drops the bad ones', () => {
    fc.assert(
      fc.property(plausibleDuid.filter((d) => d.length >= 5), fc.ipV6(), hostile, (duid, address, hostname) => {
        const call = parseHookCall(['add', duid, address, hostname], { DNSMASQ_IAID: '1' }, ctx);
        expect(call.kind).toBe('event');
        if (call.kind !== 'event') return;
        const valid = hostname !== '' && hostnameSchema.safeParse(hostname).success;
        expect(call.event.hostname).toBe(valid ? hostname : null);
      }),
      { numRuns: 2000 },
    );
  });
});
