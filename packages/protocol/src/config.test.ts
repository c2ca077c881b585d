import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, iniBoolean, parseConfig, portSchema, readSecretFile, redact } from './config.js';
import { makeTempDir } from './testing/temp-dir.js';

const schema = z.object({
  server: z.object({ port: portSchema, tls: iniBoolean.default(true) }),
  agents: z.record(z.string(), z.object({ url: z.string().url() })),
});

describe('config loading', () => {
  it('parses sections, dotted sections and coerced values', () => {
    const config = parseConfig('[server]\nport = 8443\ntls = no\n[agents.dock1]\nurl = https://x:1\n', schema);
    expect(config).toEqual({ server: { port: 8443, tls: false }, agents: { dock1: { url: 'https://x:1' } } });
  });

  it.each([
    ['[server]\nport = 99999\n[agents.a]\nurl = https://x\n', /^config f.ini: \[server\] port: /],
    ['[server]\nport = 1\n[agents.a]\nurl = nope\n', /^config f.ini: \[agents.a\] url: /],
    ['[agents.a]\nurl = https://x\n', /^config f.ini: key server: /],
  ])('names the bad key in one line', (text, message) => {
    expect(() => parseConfig(text, schema, 'f.ini')).toThrow(ConfigError);
    expect(() => parseConfig(text, schema, 'f.ini')).toThrow(message);
  });

  it('reads secrets only from private files', () => {
    const dir = makeTempDir('secret-');
    const file = join(dir, 'secret');
    writeFileSync(file, `${'a'.repeat(64)}\n`, { mode: 0o600 });
    expect(readSecretFile(file).toString()).toBe('a'.repeat(64));
    chmodSync(file, 0o644);
    expect(() => readSecretFile(file)).toThrow(/readable by group or others/);
    writeFileSync(join(dir, 'short'), 'abc', { mode: 0o600 });
    expect(() => readSecretFile(join(dir, 'short'))).toThrow(/shorter than 32/);
  });

  it('redacts secrets for the start-up log but keeps file paths', () => {
    expect(redact({ auth: { secret: 's', secret_file: '/f' }, a: [{ token: 't' }] })).toEqual({
      auth: { secret: '[redacted]', secret_file: '/f' },
      a: [{ token: '[redacted]' }],
    });
  });
});
