import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dnsmasq/orchestrator-hook.sh: the spool's one writer. Tests spool calls through it, never by hand. */
export const HOOK_SCRIPT = fileURLToPath(new URL('../../../../dnsmasq/orchestrator-hook.sh', import.meta.url));

export interface SpoolWriter {
  /** Run the script as dnsmasq would: `args` as its arguments, `env` (DNSMASQ_*…) added to a clean environment. */
  call(args: string[], env?: Record<string, string>): SpawnSyncReturns<string>;
  /** What the script handed to logger(1), one line per call of it. */
  syslog(): string[];
}

/**
 * The script with ORCHESTRATOR_HOOK_SPOOL = `spoolDir`, and a logger(1) of
 * its own in `workDir` that records instead of writing to syslog.
 */
export function spoolWriter(spoolDir: string, workDir: string, env: Record<string, string> = {}): SpoolWriter {
  const bin = join(workDir, 'bin');
  const logged = join(workDir, 'syslog');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'logger'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${logged}'\n`);
  chmodSync(join(bin, 'logger'), 0o755);
  return {
    call: (args, callEnv = {}) =>
      spawnSync('/bin/sh', [HOOK_SCRIPT, ...args], {
        encoding: 'utf8',
        env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, ORCHESTRATOR_HOOK_SPOOL: spoolDir, ...env, ...callEnv },
      }),
    syslog: () => (existsSync(logged) ? readFileSync(logged, 'utf8').trim().split('\n') : []),
  };
}
