import { readFileSync } from 'node:fs';
import { parse } from 'ini';
import { z } from 'zod';
import { readRegularFile } from './regular-file.js';

/** A configuration problem: one clear line naming the file and the key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Read an INI file and validate it against a schema. Sections map to objects;
 * dotted section names nest (`[agents.dock1]` becomes `agents.dock1`).
 * Values arrive as strings (ini gives `true`/`false` as booleans): use
 * `z.coerce.number()` and `iniBoolean` in schemas.
 */
export function loadConfigFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`config ${file}: cannot read: ${(error as Error).message}`);
  }
  return parseConfig(text, schema, file);
}

export function parseConfig<S extends z.ZodType>(text: string, schema: S, file = '<config>'): z.output<S> {
  const raw = parse(text);
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new ConfigError(`config ${file}: ${describeKey(issue.path)}: ${issue.message}`);
}

function describeKey(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  if (path.length === 1) return `key ${String(path[0])}`;
  const key = String(path[path.length - 1]);
  const section = path.slice(0, -1).map(String).join('.');
  return `[${section}] ${key}`;
}

/** An INI value that holds a list: its items, separated by commas or spaces (ports, URLs). */
export function iniList(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** INI boolean: true/false/yes/no/1/0/on/off. */
export const iniBoolean = z.preprocess((value) => {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  return value;
}, z.boolean());

export const portSchema = z.coerce.number().int().min(1).max(65535);

/**
 * Read a private file (a key or token file): opened without following a
 * symbolic link and without blocking on a FIFO, checked before a byte is
 * read to be a regular file that group and others cannot read, and no larger
 * than `maxBytes`. A ConfigError naming the file otherwise.
 */
export function readPrivateFile(file: string, what: string, maxBytes = 64 * 1024): string {
  const read = readRegularFile(file, {
    maxBytes,
    check: (stat) => ((stat.mode & 0o077) !== 0 ? `readable by group or others (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it` : undefined),
  });
  if (!read.ok) throw new ConfigError(`${what} file ${file}: ${read.reason === 'a symbolic link' ? 'it is a symbolic link' : read.reason}`);
  return read.bytes.toString('utf8');
}

/**
 * Read a token (the dashboard's, /metrics') from a private file
 * (readPrivateFile); refuses tokens shorter than 32 characters. Returns the
 * bytes of the trimmed text.
 */
export function readSecretFile(file: string, what = 'secret'): Buffer {
  const text = readPrivateFile(file, what).trim();
  if (text.length < 32) throw new ConfigError(`${what} file ${file}: secret is shorter than 32 characters`);
  return Buffer.from(text, 'utf8');
}

/** Replace secrets in a config object for the start-up log. */
export function redact<T>(value: T, keys: readonly string[] = ['secret', 'token', 'key', 'password']): T {
  if (Array.isArray(value)) return value.map((v) => redact(v, keys)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = keys.some((s) => k.toLowerCase().includes(s)) && typeof v === 'string' && !k.toLowerCase().endsWith('file')
      ? '[redacted]'
      : redact(v, keys);
  }
  return out as T;
}
