import { describe, expect, it } from 'vitest';
import { parseHookCall } from './dnsmasq-call.js';

const ctx = { server: 'devnet', role: 'device' as const, now: new Date('2026-01-01T00:00:00Z'), newId: () => '6f9619ff-8b86-4d01-b42d-00cf4fc964ff' };
const duid = '00:01:00:01:2c:5e:11:22:02:aa:bb:cc:dd:ee';
const v6env = { DNSMASQ_IAID: '12345', DNSMASQ_MAC: '02:aa:bb:cc:dd:ee', DNSMASQ_INTERFACE: 'brdev', DNSMASQ_LEASE_EXPIRES: '1767229200' };

describe('parseHookCall', () => {
  it('turns a DHCPv6 add into an event', () => {
    const call = parseHookCall(['add', duid, 'fd00:1::1000', 'laptop'], v6env, ctx);
    expect(call).toEqual({
      kind: 'event',
      warnings: [],
      event: {
        eventId: '6f9619ff-8b86-4d01-b42d-00cf4fc964ff',
        server: 'devnet',
        role: 'device',
        action: 'add',
        duid,
        iaid: '12345',
        address: 'fd00:1::1000',
        hostname: 'laptop',
        mac: '02:aa:bb:cc:dd:ee',
        interface: 'brdev',
        expiresAt: '2026-01-01T01:00:00.000Z',
        seenAt: '2026-01-01T00:00:00.000Z',
      },
    });
  });

  it.each([
    [['init'], v6env, 'action init is not used'],
    [['tftp', '10', '1.2.3.4', '/f'], v6env, 'action tftp is not used'],
    [['add', '02:aa:bb:cc:dd:ee', '10.0.0.5'], {}, 'DHCPv4 call (no DNSMASQ_IAID)'],
    [[], v6env, 'no action argument'],
    [['bogus', duid, 'fd00::1'], v6env, 'unknown action "bogus"'],
  ])('ignores %j', (argv, env, reason) => {
    expect(parseHookCall(argv, env, ctx)).toEqual({ kind: 'ignored', reason });
  });

  it.each([
    ['a DUID that is not hex', ['add', '$(reboot)', 'fd00::1'], v6env, /invalid duid/],
    ['an IPv4 address', ['add', duid, '10.0.0.1'], v6env, /invalid address/],
    ['an IAID that is not a number', ['add', duid, 'fd00::1'], { ...v6env, DNSMASQ_IAID: '1;2' }, /invalid iaid/],
    ['an IAID over 32 bits', ['add', duid, 'fd00::1'], { ...v6env, DNSMASQ_IAID: '4294967296' }, /invalid iaid/],
  ])('refuses %s', (_what, argv, env, reason) => {
    const call = parseHookCall(argv, env, ctx);
    expect(call.kind).toBe('invalid');
    expect(call.kind === 'invalid' && call.reason).toMatch(reason);
  });

  it.each(['$(touch /tmp/pwned)', ';reboot', '../../etc', 'x'.repeat(300), 'ünïcode', '-lead'])(
    'drops the hostname %j but keeps the event',
    (hostname) => {
      const call = parseHookCall(['add', duid, 'fd00::1', hostname], v6env, ctx);
      expect(call.kind).toBe('event');
      if (call.kind !== 'event') return;
      expect(call.event.hostname).toBeNull();
      expect(call.warnings[0]).toMatch(/^hostname dropped/);
    },
  );

  it('accepts temporary-address IAIDs, strips a hardware-type prefix from the MAC, and upper-case DUIDs', () => {
    const call = parseHookCall(['old', duid.toUpperCase(), 'FD00::1'], { ...v6env, DNSMASQ_IAID: 'T7', DNSMASQ_MAC: '1:02:AA:BB:CC:DD:EE' }, ctx);
    expect(call.kind === 'event' && [call.event.iaid, call.event.mac, call.event.duid, call.event.address]).toEqual([
      'T7',
      '02:aa:bb:cc:dd:ee',
      duid,
      'fd00::1',
    ]);
  });

  it('reads the expiry from DNSMASQ_LEASE_LENGTH, and 0 as infinite', () => {
    const env = { DNSMASQ_IAID: '1', DNSMASQ_LEASE_LENGTH: '60' };
    const call = parseHookCall(['add', duid, 'fd00::1'], env, ctx);
    expect(call.kind === 'event' && call.event.expiresAt).toBe('2026-01-01T00:01:00.000Z');
    const infinite = parseHookCall(['add', duid, 'fd00::1'], { DNSMASQ_IAID: '1', DNSMASQ_LEASE_EXPIRES: '0' }, ctx);
    expect(infinite.kind === 'event' && infinite.event.expiresAt).toBeNull();
  });

  it('keeps the event when dnsmasq replays leases at start (no interface, data missing)', () => {
    const call = parseHookCall(['old', duid, 'fd00::1'], { DNSMASQ_IAID: '1', DNSMASQ_DATA_MISSING: '1' }, ctx);
    expect(call.kind === 'event' && call.event.interface).toBeNull();
  });
});
