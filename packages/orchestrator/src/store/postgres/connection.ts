import { parse } from 'pg-connection-string';
import type pg from 'pg';
import { readPrivateFile } from '@unionize/protocol';

/**
 * What is wrong with a URL given for the store ([store] url, migrate's --to):
 * not a postgres:// URL node-postgres can read, or one holding a password
 * (it goes in a file of its own); undefined when it is right. Each caller
 * says it in its own words.
 */
export function postgresUrlFault(url: string): 'not-postgres' | 'password' | undefined {
  if (!/^postgres(ql)?:\/\//.test(url)) return 'not-postgres';
  let password: string | null | undefined;
  try {
    ({ password } = parse(url));
  } catch {
    return 'not-postgres';
  }
  return password ? 'password' : undefined;
}

export interface StoreSettings {
  url: string;
  password_file?: string | undefined;
  pool_size: number;
  connect_timeout_ms: number;
}

/**
 * node-postgres's settings from [store]: the URL's parts, and the password
 * from its file (mode 600; never in the INI). The URL is parsed here rather
 * than given to node-postgres whole, which would let its empty password win
 * over the file's.
 */
export function postgresConnection(settings: StoreSettings): pg.PoolConfig {
  const { password: _none, ...parts } = parse(settings.url);
  const fields = Object.fromEntries(Object.entries(parts).filter(([, v]) => v !== '' && v !== undefined && v !== null));
  const password = settings.password_file ? readPrivateFile(settings.password_file, '[store] password').trim() : undefined;
  return {
    ...(fields as pg.PoolConfig),
    ...(fields.port ? { port: Number(fields.port) } : {}),
    ...(password ? { password } : {}),
    max: settings.pool_size,
    connectionTimeoutMillis: settings.connect_timeout_ms,
    application_name: 'unionize-orchestrator',
    // A connection to a host that vanished is noticed, not waited on for ever.
    keepAlive: true,
  };
}
