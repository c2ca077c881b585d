import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CtlError } from './errors.js';

/**
 * Where the orchestrator's own program is, beside orchestratorctl: in the
 * Debian package (lib/ctl/lib/ → lib/orchestrator/lib/orchestrator.mjs), and
 * in the repository (packages/ctl/dist/[bundle/] → packages/orchestrator/dist/bundle/).
 */
export function orchestratorEntry(): string {
  const candidates = [
    '../../orchestrator/lib/orchestrator.mjs',
    '../../orchestrator/dist/bundle/orchestrator.mjs',
    '../../../orchestrator/dist/bundle/orchestrator.mjs',
  ].map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new CtlError(`cannot find the orchestrator's program beside orchestratorctl (looked for ${candidates.join(', ')})`);
  return found;
}

/**
 * orchestratorctl migrate: the orchestrator's own `migrate` (it holds both
 * stores: packages/orchestrator/src/store/postgres/migrate-command.ts), run
 * by the same node, its output passed through; resolves with its exit status.
 */
export function runMigrate(args: readonly string[]): Promise<number> {
  const entry = orchestratorEntry();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, 'migrate', ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
