import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './repo.js';

/** Where the units in config/ expect the repository (README, Install). */
const UNIT_REPO = '/opt/unionize';

/**
 * How a systemd unit in config/ starts its daemon, as an argument array for
 * this checkout: its `Environment=` assignments (through env(1)), this node,
 * the node options of its ExecStart, and the script it names (the daemon's
 * bundle, its /opt/unionize moved to this repository). The lab and the bench
 * start both daemons with it, so they run what a host runs: the same bundle,
 * heap limits, compiler tiers and malloc arenas (README, Performance). The
 * daemon's own arguments (`--config FILE`) follow.
 */
export function unitCommand(unit: 'orchestrator.service' | 'unionize.service'): string[] {
  const text = readFileSync(join(repoRoot(), 'config', unit), 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(text)?.[1];
  if (!exec) throw new Error(`config/${unit}: no ExecStart`);
  const environment = [...text.matchAll(/^Environment=(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
  for (const assignment of environment) {
    if (!/^[A-Z_][A-Z0-9_]*=[^\s"']*$/.test(assignment)) throw new Error(`config/${unit}: Environment=${assignment} is not NAME=VALUE without quotes`);
  }
  const [, ...words] = exec.trim().split(/\s+/);
  const flags: string[] = [];
  let script: string | undefined;
  for (const word of words) {
    if (word.startsWith('--')) {
      flags.push(word);
      continue;
    }
    script = word;
    break;
  }
  if (!script?.startsWith(`${UNIT_REPO}/`)) throw new Error(`config/${unit}: ExecStart names no script under ${UNIT_REPO}`);
  const local = join(repoRoot(), script.slice(UNIT_REPO.length + 1));
  return [...(environment.length > 0 ? ['env', ...environment] : []), process.execPath, ...flags, local];
}
