import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildProfiles, chooseProfile, defaultProfile, profileSchema } from './profiles.js';

const parse = (sections: Record<string, Record<string, unknown>>) =>
  buildProfiles(z.record(z.string(), profileSchema).parse(sections), 'default:img');

const device = { server: 'devnet', duid: '00:01:00:01:aa', mac: '02:aa:bb:cc:dd:ee', hostname: 'lab-small-1', address: 'fd00:1::1234' };

describe('profiles', () => {
  it('picks the first profile whose every match_* key matches, else the default', () => {
    const profiles = parse({
      big: { match_hostname: 'lab-big-*', image: 'big:1', memory: '256m', cpus: '1.5' },
      small: { match_hostname: 'LAB-SMALL-*', match_prefix: 'fd00:1::/64', image: 'small:1', memory: '64m', ttl_seconds: '5', cooldown_seconds: '30' },
      everyone: { match_server: 'devnet' },
    });
    const fallback = defaultProfile('default:img');
    const small = chooseProfile(profiles, fallback, device);
    expect(small).toMatchObject({ name: 'small', image: 'small:1', memoryBytes: 64 * 1024 ** 2, ttlSeconds: 5, cooldownSeconds: 30, nanoCpus: null });
    expect(chooseProfile(profiles, fallback, { ...device, hostname: 'lab-big-2' })).toMatchObject({ name: 'big', nanoCpus: 1_500_000_000 });
    expect(chooseProfile(profiles, fallback, { ...device, hostname: 'other', address: 'fd00:2::1' }).name).toBe('everyone');
    expect(chooseProfile(profiles, fallback, { ...device, server: 'x', hostname: null }).name).toBe('default');
    expect(chooseProfile(profiles, fallback, { ...device, address: 'fd00:2::1' }).name).toBe('everyone');
  });

  it('reads commands as JSON arrays and env[] entries', () => {
    const [p] = parse({ web: { command: '["/bin/sh","-c","exec httpd -f"]', env: ['A=1', 'B=x=y'] } });
    expect(p).toMatchObject({ command: ['/bin/sh', '-c', 'exec httpd -f'], env: { A: '1', B: 'x=y' }, image: 'default:img' });
  });

  it.each([
    [{ command: 'httpd -f' }, 'command must be a JSON array'],
    [{ memory: '1m' }, 'memory below 6m'],
    [{ match_prefix: 'fd00::' }, 'IPv6 prefix'],
    [{ match_hostname: '$(reboot)' }, 'a pattern of'],
    [{ env: 'lower=1' }, 'NAME=value'],
    [{ unknown: '1' }, 'nrecognized'],
  ])('refuses %j', (section, message) => {
    expect(() => parse({ p: section })).toThrow(message);
  });
});
