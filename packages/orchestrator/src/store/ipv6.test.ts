import { describe, expect, it } from 'vitest';
import { Prefix64, bigIntToIpv6, ipv6ToBigInt } from './ipv6.js';

describe('ipv6', () => {
  it.each([
    ['::', '::'],
    ['fd00:3::100', 'fd00:3::100'],
    ['FD00:0003:0000:0000:0000:0000:0000:0100', 'fd00:3::100'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8::', '2001:db8::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
  ])('round-trips %s to its RFC 5952 form %s', (input, output) => {
    expect(bigIntToIpv6(ipv6ToBigInt(input))).toBe(output);
  });

  it('hands out addresses inside a /64 and finds their offsets', () => {
    const prefix = new Prefix64('fd12:3456:789a:3::/64');
    expect(prefix.addressAt(0x100)).toBe('fd12:3456:789a:3::100');
    expect(prefix.offsetOf('fd12:3456:789a:3::1ff')).toBe(0x1ff);
    expect(prefix.offsetOf('fd12:3456:789a:4::1')).toBeUndefined();
    expect(() => new Prefix64('fd00::/48')).toThrow(/not a \/64/);
  });
});
