import { Readable } from 'node:stream';
import { ApiError } from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import { AgentError } from '../agents/errors.js';
import type { Store } from '../store/store.js';

const clientIdPattern = /^[0-9a-f]{20}$/;

/** What an export of a client is: its live container if it has one, else its newest kept image. */
export interface ExportSource {
  clientId: string;
  agent: string;
  what: { container: string } | { kept: string };
  /** What the file is called: `CLIENT-live.tar.gz`, or the kept image's tag. */
  filename: string;
}

export async function exportSourceOf(store: Store, clientId: string): Promise<ExportSource | undefined> {
  if (!clientIdPattern.test(clientId)) return undefined;
  const instance = await store.getInstance(clientId);
  if (instance) return { clientId, agent: instance.agent, what: { container: instance.containerName }, filename: `${clientId}-live.tar.gz` };
  const kept = (await store.listKept(clientId)).at(-1);
  if (!kept) return undefined;
  return { clientId, agent: kept.agent, what: { kept: kept.imageId }, filename: `${clientId}-${kept.image.split(':').at(-1)}.tar.gz` };
}

/**
 * Open an export on the agent that holds it: a stream of the gzipped
 * `docker save` tarball, read as the agent sends it. Each export asks only
 * for the one container or image of this client on its own agent.
 */
export async function openExport(agents: readonly AgentClient[], source: ExportSource): Promise<Readable> {
  const agent = agents.find((a) => a.name === source.agent);
  if (!agent) throw new ApiError(503, 'AGENT_UNKNOWN', `client ${source.clientId}'s export is on agent ${source.agent}, which is not configured`);
  let stream: Readable | null;
  try {
    stream = await agent.exportImage(source.what);
  } catch (error) {
    if (error instanceof AgentError && error.code === 'ORCH_AGENT_UNREACHABLE') {
      throw new ApiError(503, 'AGENT_UNREACHABLE', `client ${source.clientId}'s export is on agent ${source.agent}, which cannot be reached (${error.message}); try again once it answers`);
    }
    throw new ApiError(502, 'AGENT_REFUSED', (error as Error).message);
  }
  if (!stream) throw new ApiError(404, 'NOT_FOUND', `agent ${source.agent} no longer has client ${source.clientId}'s ${'container' in source.what ? 'container' : 'kept image'}`);
  return stream;
}
