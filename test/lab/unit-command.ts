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
/**
 * The `Environment=` assignments of a unit's text, in order, as systemd reads
 * them: an empty `Environment=` drops those before it. Only NAME=VALUE words
 * without quotes or specifiers are taken (ours need no more); anything else
 * is refused rather than read differently from systemd.
 */
export function unitEnvironment(text: string, unit = 'the unit'): string[] {
  let environment: string[] = [];
  for (const [, value] of text.matchAll(/^Environment=(.*)$/gm)) {
    const words = value!.trim().split(/\s+/).filter((w) => w !== '');
    if (words.length === 0) {
      environment = [];
      continue;
    }
    for (const assignment of words) {
      if (!/^[A-Z_][A-Z0-9_]*=[^\s"'%$\\]*$/.test(assignment)) throw new Error(`${unit}: Environment=${assignment} is not NAME=VALUE without quotes or specifiers`);
    }
    environment.push(...words);
  }
  return environment;
}

export function unitCommand(unit: 'orchestrator.service' | 'unionize.service'): string[] {
  const text = readFileSync(join(repoRoot(), 'config', unit), 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(text)?.[1];
  if (!exec) throw new Error(`config/${unit}: no ExecStart`);
  const environment = unitEnvironment(text, `config/${unit}`);
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
