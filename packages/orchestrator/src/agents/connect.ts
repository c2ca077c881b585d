import { ConfigError, KeyFile, agentPeer, loadServerTrust, peerKeyFile, type SigningKey } from '@unionize/protocol';
import { HttpsAgentClient, type AgentClient } from './agent-client.js';
import { withRetry } from './with-retry.js';

/** What this reads of an `[agents.NAME]` section of orchestrator.ini (config.ts; not imported: config imports the life cycle, which imports agents). */
export interface AgentSection {
  url: string;
  ca?: string | undefined;
  pin?: string | undefined;
  timeout_ms: number;
  attempts: number;
}

/** Makes the client of one agent from its section; `key` is that agent's own signing key; `where` names the section in errors. */
export type AgentClientFactory = (name: string, section: AgentSection, options: { key: () => SigningKey; where: string; leaderEpoch: () => number | undefined }) => AgentClient;

/**
 * The ways to reach an agent, by the scheme of its `url`: unionize over
 * signed HTTPS is the one there is (the config takes https:// URLs only).
 * Another kind of agent is another entry here, and nothing else changes.
 */
export const AGENT_CLIENTS: Readonly<Record<string, AgentClientFactory>> = {
  'https:': (name, section, { key, where, leaderEpoch }) =>
    new HttpsAgentClient({ name, url: section.url, trust: loadServerTrust(section, where), key, timeoutMs: section.timeout_ms, leaderEpoch }),
};

export interface ConnectOptions {
  /** `[auth] keys_dir`: each agent's key file is `agent-NAME.keys` in it. */
  keysDir: string;
  configFile: string;
  /** A key file changed into one that cannot be read: its keys read before stay in use. */
  onKeyFileError?: (error: Error) => void;
  factories?: Readonly<Record<string, AgentClientFactory>>;
  /** Of a pair's leader: the epoch it leads in, sent to the agents (agent-client.ts); undefined alone or while standing by. */
  leaderEpoch?: () => number | undefined;
}

/**
 * A client per configured agent, made by the factory its URL chooses, signing
 * with that agent's own key (read again when its file changes), retrying
 * retryable failures (`attempts`).
 */
export function connectAgents(config: { agents: Readonly<Record<string, AgentSection>> }, options: ConnectOptions): AgentClient[] {
  const factories = options.factories ?? AGENT_CLIENTS;
  return Object.entries(config.agents).map(([name, section]) => {
    const where = `config ${options.configFile}: [agents.${name}]`;
    const scheme = new URL(section.url).protocol;
    const factory = Object.hasOwn(factories, scheme) ? factories[scheme] : undefined;
    if (!factory) throw new ConfigError(`${where} url: no agent client for ${scheme} URLs (known: ${Object.keys(factories).join(', ') || 'none'})`);
    const keys = new KeyFile(peerKeyFile(options.keysDir, agentPeer(name)), options.onKeyFileError ? { onReloadError: options.onKeyFileError } : {});
    const leaderEpoch = options.leaderEpoch ?? (() => undefined);
    return withRetry(factory(name, section, { key: () => keys.signingKey(), where, leaderEpoch }), { attempts: section.attempts, baseDelayMs: 200 });
  });
}
