import { randomBytes } from 'node:crypto';
import {
  closeSync, constants, existsSync, fchmodSync, fchownSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync,
  type Stats,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ConfigError, KEY_FILE_SUFFIX, PEER_PATTERN, formatKeyFile, newSigningKey, peerKeyFile, readKeyFile, type SigningKey,
} from '@unionize/protocol';
import { CtlError } from './errors.js';

/**
 * The peers' key files in the orchestrator's `[auth] keys_dir`
 * (`orchestratorctl init`, `keys list|rotate|retire`). A file is replaced
 * whole (written beside it, then renamed over it) with the mode, owner and
 * group it had, so the daemon that reads it never sees half a file and can
 * still read it after root rewrote it.
 */

export interface PeerKeys {
  peer: string;
  file: string;
  /** The first signs; all are accepted. */
  keys: readonly SigningKey[];
}

function asCtlError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ConfigError) throw new CtlError(error.message);
    throw error;
  }
}

/**
 * Write a peer's key file atomically, keeping the owner of the one it
 * replaces (mode 600 always). The new file is created under a random name
 * that must not exist (O_EXCL: no link is followed), given its owner through
 * its descriptor, written and synced, then renamed over the old one, and the
 * directory synced. A key file that is a symbolic link is refused.
 */
export function writePeerKeys(file: string, peer: string, keys: readonly SigningKey[]): void {
  let before: Stats | undefined;
  try {
    before = lstatSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new CtlError(`${file}: ${(error as Error).message}`);
  }
  if (before && !before.isFile()) throw new CtlError(`${file}: not a regular file (a symbolic link?): refused`);
  const dir = dirname(file);
  const next = join(dir, `.${peer}${KEY_FILE_SUFFIX}.${randomBytes(6).toString('hex')}`);
  const fd = openSync(next, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      if (before) fchownSync(fd, before.uid, before.gid);
      fchmodSync(fd, 0o600);
      writeSync(fd, formatKeyFile(peer, keys));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(next, file);
  } catch (error) {
    rmSync(next, { force: true });
    throw error;
  }
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Make a key file for each peer that has none; returns the files made. */
export function makePeerKeys(keysDir: string, peers: readonly string[]): string[] {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const made: string[] = [];
  for (const peer of peers) {
    const file = asCtlError(() => peerKeyFile(keysDir, peer));
    if (existsSync(file)) continue;
    writePeerKeys(file, peer, [newSigningKey(peer)]);
    made.push(file);
  }
  return made;
}

/** Every peer's keys in the directory, by file name. */
export function listPeerKeys(keysDir: string): PeerKeys[] {
  let names: string[];
  try {
    names = readdirSync(keysDir);
  } catch (error) {
    throw new CtlError(`keys directory ${keysDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return names
    .filter((name) => name.endsWith(KEY_FILE_SUFFIX) && PEER_PATTERN.test(name.slice(0, -KEY_FILE_SUFFIX.length)))
    .sort()
    .map((name) => {
      const peer = name.slice(0, -KEY_FILE_SUFFIX.length);
      const file = join(keysDir, name);
      return { peer, file, keys: asCtlError(() => readKeyFile(file)) };
    });
}

function readPeer(keysDir: string, peer: string): PeerKeys {
  if (!PEER_PATTERN.test(peer)) throw new CtlError(`not a peer: ${JSON.stringify(peer)} (hook, operator or agent-NAME)`, 2);
  const file = asCtlError(() => peerKeyFile(keysDir, peer));
  if (!existsSync(file)) throw new CtlError(`${file}: no such key file (orchestratorctl keys list shows the peers)`);
  return { peer, file, keys: asCtlError(() => readKeyFile(file)) };
}

/**
 * Step one of a rotation: a next key at the end of the peer's file. Verifiers
 * accept it once they read the file; signers still sign with the first.
 * Refused while a rotation is under way (two keys already).
 */
export function rotatePeerKey(keysDir: string, peer: string): { file: string; added: SigningKey; keys: readonly SigningKey[] } {
  const current = readPeer(keysDir, peer);
  if (current.keys.length > 1) {
    throw new CtlError(`${peer} already has a next key (${current.keys.slice(1).map((k) => k.id).join(', ')}): finish with orchestratorctl keys retire ${peer} first`);
  }
  const added = newSigningKey(peer);
  const keys = [...current.keys, added];
  writePeerKeys(current.file, peer, keys);
  return { file: current.file, added, keys };
}

/** Step two: the first key goes, so the next one signs. Refused when it is the only one. */
export function retirePeerKey(keysDir: string, peer: string): { file: string; retired: SigningKey; keys: readonly SigningKey[] } {
  const current = readPeer(keysDir, peer);
  if (current.keys.length < 2) throw new CtlError(`${peer} has one key only: orchestratorctl keys rotate ${peer} adds the next one first`);
  const [retired, ...keys] = current.keys as [SigningKey, ...SigningKey[]];
  writePeerKeys(current.file, peer, keys);
  return { file: current.file, retired, keys };
}
