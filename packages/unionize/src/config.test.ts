import { ConfigError, parseConfig } from '@unionize/protocol';
import { describe, expect, it } from 'vitest';
import { configSchema } from './config.js';

const FULL = `
[server]
listen = ::
port = 9443
cert = /etc/unionize/unionize.crt
key = /etc/unionize/unionize.key
[auth]
key_file = /etc/unionize/orchestrator.keys
[docker]
socket = /var/run/docker.sock
[network]
bridge = br-ctr          ; container bridge on this host (must exist)
gateway = FD00:3::1      ; IPv6 default route for containers' eth1
attach = native          ; native or pipework
[dhcp]
state_dir = /run/unionize/dhcp
client = dhclient
lease_wait_ms = 5000
release = true
[log]
level = info
`;

const parse = (text: string) => parseConfig(text, configSchema, 'unionize.ini');

function errorOf(text: string): string {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}

describe('unionize config', () => {
  it('reads the documented file, inline comments included', () => {
    expect(parse(FULL)).toEqual({
      server: { listen: '::', port: 9443, certFile: '/etc/unionize/unionize.crt', keyFile: '/etc/unionize/unionize.key' },
      auth: { keyFile: '/etc/unionize/orchestrator.keys' },
      docker: { socket: '/var/run/docker.sock' },
      network: { bridge: 'br-ctr', gateway: 'fd00:3::1', attach: 'native' },
      dhcp: { stateDir: '/run/unionize/dhcp', client: 'dhclient', leaseWaitMs: 5000, release: true },
      isolation: { mode: 'filter', egress: { kind: 'none' }, nft: 'nft' },
      pool: { maxContainers: 32 },
      log: { level: 'info' },
      metrics: { tokenFile: undefined },
    });
  });

  it.each([
    ['none', { kind: 'none' }],
    ['any', { kind: 'any' }],
    ['2000::/3, fd00:9::/64', { kind: 'prefixes', prefixes: ['2000::/3', 'fd00:9::/64'] }],
  ])('reads [isolation] egress = %s', (egress, expected) => {
    expect(parse(`${FULL}[isolation]\nmode = filter\negress = ${egress}\n`).isolation.egress).toEqual(expected);
  });

  it('turns isolation off with mode = open', () => {
    expect(parse(`${FULL}[isolation]\nmode = open\n`).isolation.mode).toBe('open');
  });

  it('fills defaults for optional keys and sections', () => {
    const minimal = FULL.replace(/\[docker\][^[]*/, '').replace(/\[dhcp\][^[]*/, '').replace(/\[log\][^[]*/, '').replace(/^(listen|port|attach) =.*$/gm, '');
    const config = parse(minimal);
    expect(config.server).toMatchObject({ listen: '::', port: 9443 });
    expect(config.docker.socket).toBe('/var/run/docker.sock');
    expect(config.network.attach).toBe('native');
    expect(config.log.level).toBe('info');
    expect(config.dhcp).toEqual({ stateDir: '/run/unionize/dhcp', client: 'dhclient', script: undefined, leaseWaitMs: 5000, release: true });
  });

  it('takes the pipework backend with the path of its executable', () => {
    const config = parse(FULL.replace('attach = native', 'attach = pipework\npipework = /usr/local/bin/pipework'));
    expect(config.network).toEqual({ bridge: 'br-ctr', gateway: 'fd00:3::1', attach: 'pipework', pipework: '/usr/local/bin/pipework' });
  });

  it.each([
    ['a missing key', FULL.replace(/^cert = .*$/m, ''), 'config unionize.ini: [server] cert: is missing'],
    ['a missing section', FULL.replace(/\[auth\]\nkey_file = .*\n/, ''), 'config unionize.ini: key auth: is missing'],
    ['a bad port', FULL.replace('port = 9443', 'port = 99999'), 'config unionize.ini: [server] port:'],
    ['a bad listen address', FULL.replace('listen = ::', 'listen = localhost'), '[server] listen: must be an IP address'],
    ['a bad bridge name', FULL.replace('bridge = br-ctr', 'bridge = br ctr;x'), '[network] bridge: interface name is not valid'],
    ['an IPv4 gateway', FULL.replace('gateway = FD00:3::1', 'gateway = 10.0.0.1'), '[network] gateway: must be an IPv6 address'],
    ['another attach backend', FULL.replace('attach = native', 'attach = weave'), '[network] attach: must be one of native, pipework'],
    ['pipework without its path', FULL.replace('attach = native', 'attach = pipework'), '[network] pipework: is missing (attach = pipework needs'],
    ['a pipework path for native', FULL.replace('attach = native', 'attach = native\npipework = /x'), '[network] pipework: is set but attach is not pipework'],
    ['a relative DHCP state dir', FULL.replace('state_dir = /run/unionize/dhcp', 'state_dir = run'), '[dhcp] state_dir: must be an absolute path'],
    ['a bad lease wait', FULL.replace('lease_wait_ms = 5000', 'lease_wait_ms = soon'), '[dhcp] lease_wait_ms: must be a number'],
    ['an isolation mode it does not know', `${FULL}[isolation]\nmode = off\n`, '[isolation] mode: must be one of filter, open'],
    ['an egress that is no prefix', `${FULL}[isolation]\negress = 2000::/3, internet\n`, '[isolation] egress: must be none, any or a comma-separated list of IPV6/LEN prefixes; "internet" is not one'],
    ['an IPv4 egress prefix', `${FULL}[isolation]\negress = 10.0.0.0/8\n`, '"10.0.0.0/8" is not one'],
    ['an egress prefix length over 128', `${FULL}[isolation]\negress = 2000::/129\n`, '"2000::/129" is not one'],
    ['a bad release flag', FULL.replace('release = true', 'release = maybe'), '[dhcp] release:'],
    ['a bad log level', FULL.replace('level = info', 'level = loud'), '[log] level: must be one of'],
    ['a renamed key', FULL.replace('key_file', 'keyfile'), '[auth] key_file: is missing'],
    ['the one shared secret of old', FULL.replace('key_file = /etc/unionize/orchestrator.keys', 'key_file = /k\nsecret_file = /etc/unionize/secret'), '[auth] secret_file: secret_file is no longer read'],
    ['an unknown key', FULL.replace('[docker]', '[docker]\nsockett = /x'), 'key docker: Unrecognized key: "sockett"'],
    ['an unknown section', `${FULL}\n[extra]\nx = 1\n`, '(top level): Unrecognized key: "extra"'],
  ])('names the key for %s', (_what, text, expected) => {
    expect(errorOf(text)).toContain(expected);
  });
});
