import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { CtlError } from './errors.js';
import type { OrchestratorClient } from './client.js';

/**
 * `orchestratorctl export CLIENT [-o FILE]`: the client's live container, or
 * else its newest kept image, as a gzipped `docker save` tarball (`docker
 * load -i FILE` takes it). Written as it comes: to FILE.partial, renamed to
 * FILE once whole (a cut-off download leaves no FILE); without -o, to
 * standard output, unless that is a terminal.
 */
export async function exportClient(client: OrchestratorClient, id: string, file: string | undefined): Promise<{ file: string | null; bytes: number }> {
  const path = `/v1/clients/${id}/export`;
  if (file === undefined) {
    if (process.stdout.isTTY) throw new CtlError('an export is binary (gzip): give -o FILE, or redirect standard output');
    return { file: null, bytes: await client.download(path, process.stdout) };
  }
  const partial = `${file}.partial`;
  try {
    const bytes = await client.download(path, createWriteStream(partial, { mode: 0o600 }));
    renameSync(partial, file);
    return { file, bytes };
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}
