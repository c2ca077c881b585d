import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatKeyFile } from '@unionize/protocol';
import { testKey } from '@unionize/protocol/testing/keys';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { ConfigError } from '@unionize/protocol';
import { FakeAgent } from '../testing/fake-agent.js';
import { AGENT_CLIENTS, connectAgents, type AgentSection } from './connect.js';
import { HttpsAgentClient } from './agent-client.js';

const section = (over: Partial<AgentSection> = {}) => ({
  url: 'https://[fd00:2::2]:9443',
  pin: `sha256/${Buffer.alloc(32, 1).toString('base64')}`,
  timeout_ms: 1000,
  attempts: 2,
  capacity: 0,
  drain: false,
  ...over,
});
// Each agent's own key file, as `orchestratorctl init` makes them.
const keysDir = makeTempDir('connect-test-');
for (const name of ['dock1', 'dock2']) writeFileSync(join(keysDir, `agent-${name}.keys`), formatKeyFile(`agent-${name}`, [testKey(`agent-${name}-1`)]), { mode: 0o600 });

describe('connectAgents: the agent client each section chooses', () => {
  it('makes one client per section by the factory of its URL scheme, retrying as many times as the section says', async () => {
    const made: Array<{ name: string; where: string; key: string }> = [];
    const fakes = new Map<string, FakeAgent>();
    const agents = connectAgents(
      { agents: { dock1: section(), dock2: section({ attempts: 1 }) } },
      {
        keysDir,
        configFile: 'orchestrator.ini',
        factories: {
          'https:': (name, _section, { where, key }) => {
            made.push({ name, where, key: key().id });
            const fake = new FakeAgent(name);
            fakes.set(name, fake);
            return fake;
          },
        },
      },
    );
    expect(agents.map((a) => a.name)).toEqual(['dock1', 'dock2']);
    expect(made).toEqual([
      { name: 'dock1', where: 'config orchestrator.ini: [agents.dock1]', key: 'agent-dock1-1' },
      { name: 'dock2', where: 'config orchestrator.ini: [agents.dock2]', key: 'agent-dock2-1' },
    ]);
    // attempts = 2: one retryable failure is retried away; with attempts = 1 it is not.
    fakes.get('dock1')!.failNext = 1;
    fakes.get('dock2')!.failNext = 1;
    const request = { name: 'c1', image: 'img:1', labels: {}, env: {}, mac: '02:00:00:00:00:01', address: 'fd00:3::100/64' };
    await expect(agents[0]!.createContainer(request)).resolves.toMatchObject({ name: 'c1' });
    await expect(agents[1]!.createContainer(request)).rejects.toThrow(/docker is down/);
  });

  it('refuses an agent without a key file of its own, naming the file', () => {
    expect(() => connectAgents({ agents: { dock3: section() } }, { keysDir, configFile: 'o.ini' })).toThrow(/agent-dock3\.keys: cannot read/);
  });

  it('refuses a section whose URL no factory takes, naming it', () => {
    expect(() => connectAgents({ agents: { dock1: section() } }, { keysDir, configFile: 'o.ini', factories: {} })).toThrow(ConfigError);
    expect(() => connectAgents({ agents: { dock1: section() } }, { keysDir, configFile: 'o.ini', factories: {} })).toThrow(
      'config o.ini: [agents.dock1] url: no agent client for https: URLs (known: none)',
    );
  });

  it('reaches unionize over signed HTTPS by default', async () => {
    const [agent] = connectAgents({ agents: { dock1: section() } }, { keysDir, configFile: 'o.ini' });
    expect(Object.keys(AGENT_CLIENTS)).toEqual(['https:']);
    expect(agent!.name).toBe('dock1');
    await agent!.close();
    const https = AGENT_CLIENTS['https:']!('dock1', section(), { key: () => testKey('agent-dock1-1'), where: 'x' });
    expect(https).toBeInstanceOf(HttpsAgentClient);
    await https.close();
  });
});
