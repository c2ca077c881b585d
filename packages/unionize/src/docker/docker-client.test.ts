import { describe, expect, it } from 'vitest';
import { containerCreateOptions } from './docker-client.js';

describe('containerCreateOptions', () => {
  const options = containerCreateOptions({
    name: 'dev-0123456789ab',
    image: 'unionize-client:latest',
    labels: { 'io.unionize.client-id': 'c0ffee', 'io.unionize.managed': 'false', 'io.unionize.address': 'spoofed' },
    env: { CLIENT_ID: 'c0ffee', EMPTY: '' },
    mac: '02:aa:bb:cc:dd:ee',
    address: 'fd00:3::100/64',
  });

  it('gives Docker no network, IPv6 enabled, and no restart policy', () => {
    expect(options.HostConfig).toEqual({
      NetworkMode: 'none',
      Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '0', 'net.ipv6.conf.default.disable_ipv6': '0' },
      RestartPolicy: { Name: 'no' },
    });
  });

  it('adds its own labels over any the request sent', () => {
    expect(options.Labels).toEqual({
      'io.unionize.client-id': 'c0ffee',
      'io.unionize.managed': 'true',
      'io.unionize.address': 'fd00:3::100/64',
      'io.unionize.mac': '02:aa:bb:cc:dd:ee',
    });
  });

  it('passes name, image and environment through', () => {
    expect(options).toMatchObject({ name: 'dev-0123456789ab', Image: 'unionize-client:latest', Env: ['CLIENT_ID=c0ffee', 'EMPTY='] });
  });
});
