import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { ConfigError, readPrivateFile } from './config.js';

/**
 * Signing keys: one list of keys per peer, in a file of its own.
 *
 * A key file holds one key a line, `KEYID SECRET`, and may have blank lines
 * and `#` comments. The first key is the one a signer signs with; a verifier
 * accepts every key in the file. So a key is rotated with no downtime in two
 * steps (`orchestratorctl keys rotate PEER`, then `keys retire PEER`): the
 * next key is added at the end, where verifiers accept it and signers do not
 * use it yet; once every verifier holds it, the first key is removed and
 * signers move to the next. Both sides read the file again when it changes.
 *
 * The file must be mode 600 (group and others: nothing); key ids are
 * `[a-z0-9][a-z0-9._-]{0,63}` and unique; secrets are 32 to 256 printable
 * characters without spaces, used as their bytes.
 */
export interface SigningKey {
  id: string;
  secret: Buffer;
}

export const KEY_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SECRET_PATTERN = /^[\x21-\x7e]{32,256}$/;

/**
 * The peers of a deployment and their key files in the orchestrator's
 * `[auth] keys_dir`: the hook's (it may post lease events, nothing else), the
 * operators' (`orchestratorctl`: everything but posting lease events), and
 * one per agent, which the orchestrator signs with and that agent alone
 * accepts (its `[auth] key_file` is a copy).
 */
export const HOOK_PEER = 'hook';
export const OPERATOR_PEER = 'operator';
export const AGENT_PEER_PREFIX = 'agent-';
export const KEY_FILE_SUFFIX = '.keys';

/** What a config that still names one shared secret is told. */
export const SECRET_FILE_RETIRED =
  'secret_file is no longer read: one shared secret signed every request; each peer now has its own keys. Run `orchestratorctl init` (it makes them) and see the README, "Keys"';

export function agentPeer(agentName: string): string {
  return `${AGENT_PEER_PREFIX}${agentName}`;
}

/** A peer's name is its file's stem: `hook`, `operator`, `agent-NAME`. */
export const PEER_PATTERN = /^(hook|operator|agent-[a-z0-9][a-z0-9_-]{0,62})$/;

export function peerKeyFile(keysDir: string, peer: string): string {
  if (!PEER_PATTERN.test(peer)) throw new ConfigError(`not a peer: ${JSON.stringify(peer)} (hook, operator or agent-NAME)`);
  return join(keysDir, `${peer}${KEY_FILE_SUFFIX}`);
}

/** Parse a key file's text; `where` names it in errors. */
export function parseKeyFile(text: string, where: string): SigningKey[] {
  const keys: SigningKey[] = [];
  const lines = text.split('\n');
  for (const [index, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = `${where}:${index + 1}`;
    const fields = line.split(/[ \t]+/);
    if (fields.length !== 2) throw new ConfigError(`${at}: a key line is "KEYID SECRET" (two fields), got ${fields.length}`);
    const [id, secret] = fields as [string, string];
    if (!KEY_ID_PATTERN.test(id)) throw new ConfigError(`${at}: bad key id ${JSON.stringify(id.slice(0, 70))} (a-z, 0-9, . _ -, at most 64)`);
    if (!SECRET_PATTERN.test(secret)) throw new ConfigError(`${at}: the secret of ${id} must be 32 to 256 printable characters without spaces`);
    if (keys.some((k) => k.id === id)) throw new ConfigError(`${at}: key id ${id} appears twice`);
    keys.push({ id, secret: Buffer.from(secret, 'utf8') });
  }
  if (keys.length === 0) throw new ConfigError(`${where}: no key in the file`);
  return keys;
}

/** The text of a key file with these keys, the signing one first. */
export function formatKeyFile(peer: string, keys: readonly SigningKey[]): string {
  const head = `# ${peer}'s keys: "KEYID SECRET" a line. The first signs; every one is accepted.\n`;
  return head + keys.map((k) => `${k.id} ${k.secret.toString('utf8')}\n`).join('');
}

/** A new key for a peer: id `PEER-YYYYMMDD-XXXXXXXX`, 32 random bytes as 64 hex digits. */
export function newSigningKey(peer: string, now = new Date()): SigningKey {
  const day = now.toISOString().slice(0, 10).replaceAll('-', '');
  const id = `${peer.slice(0, 45)}-${day}-${randomBytes(4).toString('hex')}`;
  return { id, secret: Buffer.from(randomBytes(32).toString('hex'), 'utf8') };
}

/** Read a key file: a regular file, not a link, that group and others cannot read (readPrivateFile). */
export function readKeyFile(file: string): SigningKey[] {
  return parseKeyFile(readPrivateFile(file, 'key'), file);
}

export interface KeyFileOptions {
  /** How often, at most, the file is looked at again for a change (a monotonic clock). Default 1000 ms. */
  recheckMs?: number;
  /** A changed file that cannot be read or parsed: the keys read before stay. */
  onReloadError?: (error: Error) => void;
  now?: () => number;
}

/**
 * A key file kept current: read at construction (a ConfigError if it cannot
 * be), then read again when its modification time, size or inode change,
 * looked at no more than once a `recheckMs`. A changed file that is not valid
 * leaves the keys read before in use and is reported to `onReloadError`.
 */
export class KeyFile {
  readonly file: string;
  readonly #recheckMs: number;
  /** Told of a changed file that cannot be read (settable: a daemon's logger may come after its keys). */
  onReloadError: (error: Error) => void;
  readonly #now: () => number;
  #keys: SigningKey[];
  #stamp: string;
  #failedStamp: string | undefined;
  #checkedAt: number;

  constructor(file: string, options: KeyFileOptions = {}) {
    this.file = file;
    this.#recheckMs = options.recheckMs ?? 1000;
    this.onReloadError = options.onReloadError ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    this.#stamp = this.#statStamp();
    this.#keys = readKeyFile(file);
    this.#checkedAt = this.#now();
  }

  /** Every key, the signing one first. */
  keys(): readonly SigningKey[] {
    const now = this.#now();
    if (now - this.#checkedAt >= this.#recheckMs) {
      this.#checkedAt = now;
      this.#reloadIfChanged();
    }
    return this.#keys;
  }

  signingKey(): SigningKey {
    return this.keys()[0]!;
  }

  #statStamp(): string {
    try {
      const s = statSync(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}:${s.mode}`;
    } catch {
      return 'missing';
    }
  }

  #reloadIfChanged(): void {
    const stamp = this.#statStamp();
    if (stamp === this.#stamp) return;
    try {
      this.#keys = readKeyFile(this.file);
      // Only a file read whole counts as seen: one that failed (a bad line, a permission) is tried again at the next check.
      this.#stamp = stamp;
    } catch (error) {
      // Told once per change of the file, tried again at every check.
      if (this.#failedStamp !== stamp) this.onReloadError(error as Error);
      this.#failedStamp = stamp;
    }
  }
}

/** Where a peer's keys come from: a KeyFile, or `fixedKeys` (tests, and keys made in memory). */
export interface KeySource {
  keys(): readonly SigningKey[];
}

export function fixedKeys(keys: readonly SigningKey[]): KeySource {
  if (keys.length === 0) throw new ConfigError('no key');
  return { keys: () => keys };
}

/** The keys a server accepts, by peer. */
export interface PeerKey {
  peer: string;
  key: SigningKey;
}

/**
 * A server's keys: for each peer its key file. `find` names the peer a key id
 * belongs to. Key ids must be unique across the peers (checked at start; a
 * file changed later to repeat another peer's id loses to the peer listed
 * first, so list the least privileged first).
 */
export class Keyring {
  readonly #peers: readonly (readonly [string, KeySource])[];

  constructor(peers: Readonly<Record<string, KeySource>>) {
    this.#peers = Object.entries(peers);
    if (this.#peers.length === 0) throw new ConfigError('no peer keys');
    const seen = new Map<string, string>();
    for (const [peer, file] of this.#peers) {
      for (const key of file.keys()) {
        const other = seen.get(key.id);
        if (other) throw new ConfigError(`key id ${key.id} is in both ${other}'s and ${peer}'s key files: ids must be unique`);
        seen.set(key.id, peer);
      }
    }
  }

  find(id: string): PeerKey | undefined {
    for (const [peer, file] of this.#peers) {
      const key = file.keys().find((k) => k.id === id);
      if (key) return { peer, key };
    }
    return undefined;
  }

  /** Peers and their key ids, for the start-up log. */
  describe(): Record<string, string[]> {
    return Object.fromEntries(this.#peers.map(([peer, source]) => [peer, source.keys().map((k) => k.id)]));
  }
}
