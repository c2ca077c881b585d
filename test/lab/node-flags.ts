import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './repo.js';

/**
 * The node options a systemd unit in config/ starts its daemon with (the
 * words of ExecStart between node and the script), so that the lab and the
 * bench run the daemon as a host does: the heap limits and compiler tiers of
 * both daemons (README, Performance). The lab starts both daemons with these.
 */
export function unitNodeFlags(unit: 'orchestrator.service' | 'unionize.service'): string[] {
  const text = readFileSync(join(repoRoot(), 'config', unit), 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(text)?.[1];
  if (!exec) throw new Error(`config/${unit}: no ExecStart`);
  const [, ...words] = exec.trim().split(/\s+/);
  const flags: string[] = [];
  for (const word of words) {
    if (!word.startsWith('--')) break;
    flags.push(word);
  }
  return flags;
}
