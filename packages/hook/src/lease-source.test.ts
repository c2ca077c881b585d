import { describe, expect, it } from 'vitest';
import type { HookCallContext } from '@unionize/protocol/dnsmasq-call';
import { dnsmasqSource, keaSource } from './lease-source.js';

const ID = '0b0e4a2c-6d7f-4c1e-9a53-2f3c4d5e6f70';
const NOW = new Date('2026-12-04T12:00:00.000Z');
const ctx = (): HookCallContext => ({ server: 'devnet', role: 'device', now: NOW, newId: () => ID });

const DUID = '00:03:00:01:52:54:00:12:34:56';
const lease = { duid: DUID, iaid: '7', address: 'fd00:1::1000', hostname: 'laptop', mac: '52:54:00:12:34:56', iface: 'br-dev', cltt: 2_000_000_000, valid: 3600 };

/** The same lease as dnsmasq tells it. */
const dnsmasq = (action: string, iaid = lease.iaid) =>
  dnsmasqSource.eventsOf([action, lease.duid, lease.address, lease.hostname], {
    DNSMASQ_IAID: iaid, DNSMASQ_MAC: lease.mac, DNSMASQ_INTERFACE: lease.iface, DNSMASQ_LEASE_EXPIRES: String(lease.cltt + lease.valid),
  }, ctx());

/** ... and as Kea's run_script tells it, under `prefix` (LEASE6, LEASES6_AT0…). */
const keaLease = (prefix: string, type = 'IA_NA') => ({
  [`${prefix}_ADDRESS`]: lease.address, [`${prefix}_DUID`]: lease.duid, [`${prefix}_IAID`]: lease.iaid, [`${prefix}_HOSTNAME`]: lease.hostname,
  [`${prefix}_HWADDR`]: lease.mac, [`${prefix}_HWADDR_TYPE`]: '1', [`${prefix}_CLTT`]: String(lease.cltt), [`${prefix}_VALID_LIFETIME`]: String(lease.valid),
  [`${prefix}_TYPE`]: type, [`${prefix}_STATE`]: 'default', [`${prefix}_SUBNET_ID`]: '1', [`${prefix}_PREFERRED_LIFETIME`]: '1800', [`${prefix}_PREFIX_LEN`]: '128',
});
const kea = (point: string, env: Record<string, string>) => keaSource.eventsOf([point], { QUERY6_IFACE_NAME: lease.iface, ...env }, ctx());

describe('LeaseSource: Kea calls make the events dnsmasq makes for the same lease change', () => {
  it('a lease handed out (leases6_committed) is dnsmasq\'s add', () => {
    const made = kea('leases6_committed', { LEASES6_SIZE: '1', DELETED_LEASES6_SIZE: '0', ...keaLease('LEASES6_AT0') });
    expect(made).toEqual(dnsmasq('add'));
    expect(made[0]).toMatchObject({ kind: 'event', event: { action: 'add', duid: DUID, iaid: '7', hostname: 'laptop', expiresAt: '2033-05-18T04:33:20.000Z' } });
  });

  it('a lease kept (lease6_renew, lease6_rebind) is dnsmasq\'s old', () => {
    for (const point of ['lease6_renew', 'lease6_rebind']) expect(kea(point, keaLease('LEASE6'))).toEqual(dnsmasq('old'));
  });

  it('a lease gone (lease6_release, lease6_expire, lease6_decline) is dnsmasq\'s del', () => {
    for (const point of ['lease6_release', 'lease6_decline']) expect(kea(point, keaLease('LEASE6'))).toEqual(dnsmasq('del'));
    // Expiry is Kea's own doing: no packet, so no QUERY6_IFACE_NAME and no interface.
    expect(keaSource.eventsOf(['lease6_expire'], keaLease('LEASE6'), ctx())).toEqual(
      dnsmasqSource.eventsOf(['del', lease.duid, lease.address, lease.hostname], { DNSMASQ_IAID: '7', DNSMASQ_MAC: lease.mac, DNSMASQ_LEASE_EXPIRES: String(lease.cltt + lease.valid) }, ctx()),
    );
  });

  it('a temporary address (IA_TA) is dnsmasq\'s T-prefixed IAID', () => {
    expect(kea('lease6_renew', keaLease('LEASE6', 'IA_TA'))).toEqual(dnsmasq('old', 'T7'));
  });

  it('leases6_committed with several leases and deletions: one event each, handed out first', () => {
    const made = kea('leases6_committed', {
      LEASES6_SIZE: '2', ...keaLease('LEASES6_AT0'), ...keaLease('LEASES6_AT1'), LEASES6_AT1_IAID: '8', LEASES6_AT1_ADDRESS: 'fd00:1::1001',
      DELETED_LEASES6_SIZE: '1', ...keaLease('DELETED_LEASES6_AT0'), DELETED_LEASES6_AT0_ADDRESS: 'fd00:1::abcd',
    });
    expect(made.map((c) => (c.kind === 'event' ? [c.event.action, c.event.iaid, c.event.address] : c.kind))).toEqual([
      ['add', '7', 'fd00:1::1000'], ['add', '8', 'fd00:1::1001'], ['del', '7', 'fd00:1::abcd'],
    ]);
  });
});

describe('LeaseSource: Kea calls are validated at the edge', () => {
  it('drops a hostile hostname or MAC with a warning, as for dnsmasq, and keeps the event', () => {
    const [made] = kea('lease6_renew', { ...keaLease('LEASE6'), LEASE6_HOSTNAME: '$(reboot);`x`', LEASE6_HWADDR: 'zz' });
    expect(made).toMatchObject({ kind: 'event', event: { hostname: null, mac: null } });
    expect(made?.kind === 'event' && made.warnings.join()).toMatch(/hostname dropped.*mac dropped/);
  });

  it('refuses a bad DUID, address or IAID as invalid', () => {
    for (const bad of [{ LEASE6_DUID: 'not-a-duid' }, { LEASE6_ADDRESS: '10.0.0.1' }, { LEASE6_IAID: '-1' }, { LEASE6_DUID: '' }]) {
      expect(kea('lease6_renew', { ...keaLease('LEASE6'), ...bad })).toEqual([{ kind: 'invalid', reason: expect.stringMatching(/^invalid (duid|address|iaid)/) }]);
    }
  });

  it('ignores what carries no address lease: other hook points, DHCPv4, prefixes (IA_PD), an empty commit', () => {
    expect(kea('lease4_renew', {})).toEqual([{ kind: 'ignored', reason: 'hook point "lease4_renew" is not used' }]);
    expect(kea('lease6_recover', keaLease('LEASE6'))).toMatchObject([{ kind: 'ignored' }]);
    expect(keaSource.eventsOf([], {}, ctx())).toEqual([{ kind: 'ignored', reason: 'no hook point argument' }]);
    expect(kea('lease6_renew', keaLease('LEASE6', 'IA_PD'))).toMatchObject([{ kind: 'ignored', reason: expect.stringContaining('IA_PD') }]);
    expect(kea('leases6_committed', { LEASES6_SIZE: '0', DELETED_LEASES6_SIZE: '0' })).toMatchObject([{ kind: 'ignored' }]);
  });

  it('refuses an unknown lease type and a lease count it will not read', () => {
    expect(kea('lease6_renew', keaLease('LEASE6', 'IA_XX'))).toMatchObject([{ kind: 'invalid', reason: expect.stringContaining('LEASE6_TYPE') }]);
    for (const size of ['65', '1e3', '-1', '99999999']) {
      expect(kea('leases6_committed', { LEASES6_SIZE: size })).toMatchObject([{ kind: 'invalid', reason: expect.stringContaining('LEASES6_SIZE') }]);
    }
  });

  it('an infinite lease (valid lifetime 0xffffffff) has no expiry, as dnsmasq\'s 0', () => {
    const [made] = kea('lease6_renew', { ...keaLease('LEASE6'), LEASE6_VALID_LIFETIME: '4294967295' });
    expect(made).toMatchObject({ kind: 'event', event: { expiresAt: null } });
    const [fromDnsmasq] = dnsmasqSource.eventsOf(['old', DUID, lease.address], { DNSMASQ_IAID: '7', DNSMASQ_LEASE_EXPIRES: '0' }, ctx());
    expect(fromDnsmasq).toMatchObject({ kind: 'event', event: { expiresAt: null } });
  });
});
