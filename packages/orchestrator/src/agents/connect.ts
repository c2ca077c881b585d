import { ConfigError, loadServerTrust } from '@unionize/protocol';
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

/** Makes the client of one agent from its section; `where` names the section in errors. */
export type AgentClientFactory = (name: string, section: AgentSection, options: { secret: Buffer; where: string }) => AgentClient;

/**
 * The ways to reach an agent, by the scheme of its `url`: unionize over
 * HMAC-signed HTTPS is the one there is (the config takes https:// URLs only).
 * Another kind of agent is another entry here, and nothing else changes.
 */
export const AGENT_CLIENTS: Readonly<Record<string, AgentClientFactory>> = {
  'https:': (name, section, { secret, where }) =>
    new HttpsAgentClient({ name, url: section.url, trust: loadServerTrust(section, where), secret, timeoutMs: section.timeout_ms }),
};

/** A client per configured agent, made by the factory its URL chooses, retrying retryable failures (`attempts`). */
export function connectAgents(
  config: { agents: Readonly<Record<string, AgentSection>> },
  options: { secret: Buffer; configFile: string; factories?: Readonly<Record<string, AgentClientFactory>> },
): AgentClient[] {
  const factories = options.factories ?? AGENT_CLIENTS;
  return Object.entries(config.agents).map(([name, section]) => {
    const where = `config ${options.configFile}: [agents.${name}]`;
    const scheme = new URL(section.url).protocol;
    const factory = Object.hasOwn(factories, scheme) ? factories[scheme] : undefined;
    if (!factory) throw new ConfigError(`${where} url: no agent client for ${scheme} URLs (known: ${Object.keys(factories).join(', ') || 'none'})`);
    return withRetry(factory(name, section, { secret: options.secret, where }), { attempts: section.attempts, baseDelayMs: 200 });
  });
}
