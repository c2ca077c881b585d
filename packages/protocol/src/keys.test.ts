import { execFileSync } from 'node:child_process';
import { chmodSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config.js';
import { KeyFile, Keyring, fixedKeys, formatKeyFile, newSigningKey, parseKeyFile, peerKeyFile, readKeyFile } from './keys.js';
import { makeTempDir } from './testing/temp-dir.js';
import { testKey } from './testing/keys.js';

const dir = makeTempDir('keys-test-');
const secret = 'a'.repeat(64);

function write(name: string, text: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
  return file;
}

describe('key files', () => {
  it('reads "KEYID SECRET" lines, the first signing, with comments, blank lines and CRLF', () => {
    const keys = parseKeyFile(`# hook\r\n\r\nhook-1 ${secret}\r\n  hook-2\t${'b'.repeat(40)}  \n`, 'f');
    expect(keys.map((k) => k.id)).toEqual(['hook-1', 'hook-2']);
    expect(keys[0]!.secret.toString()).toBe(secret);
  });

  it.each([
    ['an empty file', '# nothing\n', /no key/],
    ['one field', 'hook-1\n', /two fields/],
    ['three fields', `hook-1 ${secret} x\n`, /two fields/],
    ['a bad id', `Hook/1 ${secret}\n`, /bad key id/],
    ['a short secret', 'hook-1 short\n', /32 to 256/],
    ['a repeated id', `hook-1 ${secret}\nhook-1 ${'c'.repeat(32)}\n`, /appears twice/],
  ])('refuses %s, naming the file and line', (_what, text, message) => {
    expect(() => parseKeyFile(text, 'keys/hook.keys')).toThrow(message);
    expect(() => parseKeyFile(text, 'keys/hook.keys')).toThrow(/keys\/hook\.keys/);
  });

  it('refuses a key file that group or others may read, a symbolic link and a FIFO, before reading a byte', () => {
    const file = write('open.keys', `hook-1 ${secret}\n`, 0o640);
    expect(() => readKeyFile(file)).toThrow(/chmod 600/);
    symlinkSync(write('target.keys', `hook-1 ${secret}\n`), join(dir, 'link.keys'));
    expect(() => readKeyFile(join(dir, 'link.keys'))).toThrow(/symbolic link/);
    execFileSync('mkfifo', ['-m', '600', join(dir, 'fifo.keys')]);
    expect(() => readKeyFile(join(dir, 'fifo.keys'))).toThrow(/not a regular file/);
  });

  it('writes what it reads: formatKeyFile and newSigningKey', () => {
    const made = [newSigningKey('agent-dock1', new Date('2026-12-04T00:00:00Z')), newSigningKey('agent-dock1')];
    expect(made[0]!.id).toMatch(/^agent-dock1-20261204-[0-9a-f]{8}$/);
    expect(made[0]!.id).not.toBe(made[1]!.id);
    const file = write('agent-dock1.keys', formatKeyFile('agent-dock1', made));
    expect(readKeyFile(file)).toEqual(made);
  });

  it('names peer files hook.keys, operator.keys, agent-NAME.keys, and nothing else', () => {
    expect(peerKeyFile('/k', 'hook')).toBe('/k/hook.keys');
    expect(peerKeyFile('/k', 'agent-dock1')).toBe('/k/agent-dock1.keys');
    for (const bad of ['../hook', 'agent-', 'root', 'agent-Dock1', 'hook/x']) expect(() => peerKeyFile('/k', bad)).toThrow(ConfigError);
  });
});

describe('KeyFile', () => {
  it('reads the file again when it changes (no sooner than recheckMs), and keeps the old keys when the new file is bad', () => {
    let t = 0;
    const errors: string[] = [];
    const file = write('reload.keys', `hook-1 ${secret}\n`);
    const keys = new KeyFile(file, { recheckMs: 1000, now: () => t, onReloadError: (e) => errors.push(e.message) });
    expect(keys.signingKey().id).toBe('hook-1');

    // Rotation: the next key is added by a rename over the file, as orchestratorctl does.
    write('reload.new', `hook-1 ${secret}\nhook-2 ${'b'.repeat(64)}\n`);
    renameSync(join(dir, 'reload.new'), file);
    t = 500;
    expect(keys.keys().map((k) => k.id)).toEqual(['hook-1']);
    t = 1000;
    expect(keys.keys().map((k) => k.id)).toEqual(['hook-1', 'hook-2']);

    // A broken edit: refused, reported, the keys before stay.
    write('reload.keys', 'hook-2\n');
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    t = 2000;
    expect(keys.keys().map((k) => k.id)).toEqual(['hook-1', 'hook-2']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/two fields/);
    // Still broken at the next check: not told again. Fixed in place: read at the next check, not forgotten.
    t = 3000;
    keys.keys();
    expect(errors).toHaveLength(1);
    write('reload.keys', `hook-3 ${'c'.repeat(64)}\n`);
    utimesSync(file, new Date(), new Date(Date.now() + 9000));
    t = 4000;
    expect(keys.keys().map((k) => k.id)).toEqual(['hook-3']);
  });

  it('refuses at start a file it cannot read', () => {
    expect(() => new KeyFile(join(dir, 'missing.keys'))).toThrow(/cannot read/);
  });
});

describe('Keyring', () => {
  it('finds a key by id with its peer, and refuses ids shared by two peers', () => {
    const ring = new Keyring({ hook: fixedKeys([testKey('hook-1'), testKey('hook-2')]), operator: fixedKeys([testKey('operator-1')]) });
    expect(ring.find('hook-2')).toMatchObject({ peer: 'hook', key: { id: 'hook-2' } });
    expect(ring.find('operator-1')?.peer).toBe('operator');
    expect(ring.find('nobody')).toBeUndefined();
    expect(ring.describe()).toEqual({ hook: ['hook-1', 'hook-2'], operator: ['operator-1'] });
    expect(() => new Keyring({ hook: fixedKeys([testKey('same')]), operator: fixedKeys([testKey('same')]) })).toThrow(/unique/);
  });
});
