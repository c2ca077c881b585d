import { chmodSync, chownSync, copyFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { mustRun } from './process.js';

/**
 * The orchestrator needs no privilege (ARCHITECTURE.md), so the lab runs it
 * as an unprivileged user, as config/ suggests a host would: `nobody`, with
 * its supplementary groups cleared and no way to gain privilege again
 * (setpriv(1) --no-new-privs). It gets private copies of its TLS key,
 * certificate, CA, tokens and peer key files in directories of its own (mode
 * 700, owned by it), so that the originals stay root's and its copies are
 * readable by it alone, as readKeyFile and readSecretFile demand. unionize stays root: it needs Docker and CAP_NET_ADMIN.
 */
export interface LabUser {
  name: string;
  uid: number;
  gid: number;
}

export const ORCHESTRATOR_USER = 'nobody';

export async function lookupUser(name: string): Promise<LabUser> {
  const uid = Number((await mustRun(['id', '-u', name])).stdout.trim());
  const gid = Number((await mustRun(['id', '-g', name])).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) throw new Error(`user ${name} is not an unprivileged user (uid ${uid})`);
  return { name, uid, gid };
}

/** `argv` run as `user` (inside `ip netns exec`, after the namespace is entered). */
export function asUser(user: LabUser, argv: readonly string[]): string[] {
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--no-new-privs', ...argv];
}

/** A directory owned by `user`, mode 700, with copies of `files` in it, each mode 600 and owned by `user`. */
export function privateCopies(dir: string, user: LabUser, files: Record<string, string>): Record<string, string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
  const copies: Record<string, string> = {};
  for (const [key, file] of Object.entries(files)) {
    const copy = join(dir, basename(file));
    copyFileSync(file, copy);
    chownSync(copy, user.uid, user.gid);
    chmodSync(copy, 0o600);
    copies[key] = copy;
  }
  return copies;
}
