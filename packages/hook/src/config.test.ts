import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { loadHookConfig } from './config.js';

const work = makeTempDir('hook-config-');
const EXAMPLE = fileURLToPath(new URL('../../../config/hook.ini', import.meta.url));
const BASE = '[orchestrator]\nurl = https://[::1]:8443\nca = /ca.crt\nkey_file = /hook.keys\n[dhcp]\nserver = devnet\n';

function load(text: string) {
  const file = join(work, `hook-${Math.random().toString(36).slice(2)}.ini`);
  writeFileSync(file, text);
  return loadHookConfig({}, file);
}

describe('hook.ini [sav]', () => {
  it('is off by default', () => {
    expect(load(BASE).sav).toEqual({ enabled: false, ports: [], nft: '/usr/sbin/nft', state_file: '/var/lib/orchestrator-hook/sav-leased.json' });
  });

  it('takes the ports space- or comma-separated, names or name*', () => {
    expect(load(`${BASE}[sav]\nenabled = yes\nports = eth1, eth2 wlan*\n`).sav).toMatchObject({ enabled: true, ports: ['eth1', 'eth2', 'wlan*'] });
  });

  it.each([
    ['enabled without ports', 'enabled = true\n', /\[sav\] ports: enabled needs ports/],
    ['a port that is not a name', 'enabled = true\nports = eth1 "x"\n', /\[sav\] ports: each port must be/],
    ['a relative nft', 'nft = nft\n', /\[sav\] nft: must be an absolute path/],
    ['a key it does not know', 'bridge = br-dev\n', /bridge/],
  ])('refuses %s', (_what, section, message) => {
    expect(() => load(`${BASE}[sav]\n${section}`)).toThrow(message);
  });

  it('config/hook.ini loads with its [sav] example uncommented', () => {
    const text = readFileSync(EXAMPLE, 'utf8')
      .replace(/^; \[sav\]$/m, '[sav]')
      .replace(/^; enabled = false$/m, 'enabled = true')
      .replace(/^; ports =$/m, 'ports = eth1 wlan*')
      .replace(/^; (nft|state_file) = /gm, '$1 = ');
    expect(load(text).sav).toEqual({ enabled: true, ports: ['eth1', 'wlan*'], nft: '/usr/sbin/nft', state_file: '/var/lib/orchestrator-hook/sav-leased.json' });
  });
});
