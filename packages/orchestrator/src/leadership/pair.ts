import type { Logger } from 'pino';
import type { FetchHandler, RequestVerifier } from '@unionize/protocol';
import { createStandbyApp } from '../api/standby-app.js';
import type { LeadershipSource } from '../api/leadership-routes.js';
import { postgresConnection, type StoreSettings } from '../store/postgres/connection.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import type { QuarantinedRow } from '../store/types.js';
import { Leadership } from './leadership.js';

/** The exit status of a leader that lost its lock: its service manager starts it again, as a standby (Restart=on-failure). */
export const LEADERSHIP_LOST_EXIT = 75;

export interface PairOptions {
  store: StoreSettings & { url: string };
  name: string;
  url?: string | undefined;
  retryMs: number;
  prefix?: string | undefined;
  verifier: RequestVerifier;
  log: Logger;
  /** Serves `fetch` (the standby's answers first), and is told when the leader's API replaces them. */
  setFetch: (fetch: FetchHandler) => void;
}

export interface Pair {
  /** This orchestrator's name in the pair. */
  name: string;
  store: PostgresStore;
  leadership: Leadership;
  source: LeadershipSource;
}

/**
 * An orchestrator of a pair, until it leads: serves the standby's answers,
 * opens the shared store (through outages of the database: a start while it
 * is down waits, rather than fail and be restarted in a loop), then waits
 * for the lock. Resolves once this orchestrator leads, its epoch written:
 * main then starts what only the leader runs. A leader that loses its lock
 * exits (LEADERSHIP_LOST_EXIT): it stops acting at once, and comes back as
 * a standby, with nothing of the old leadership left in memory.
 */
export async function standBy(options: PairOptions): Promise<Pair> {
  const { log, retryMs } = options;
  const connection = postgresConnection(options.store);
  const leadership = new Leadership({
    connection,
    name: options.name,
    ...(options.url ? { url: options.url } : {}),
    retryMs,
    log,
    onLost: (reason) => {
      log.fatal({ reason }, 'leadership lost: exiting at once, so that nothing more is done beside the next leader (the service manager starts this orchestrator again, as a standby)');
      process.exit(LEADERSHIP_LOST_EXIT);
    },
  });
  const source: LeadershipSource = {
    view: async () => ({ name: options.name, role: leadership.leading ? 'leader' : 'standby', leader: leadership.leader() ?? null }),
  };
  options.setFetch(createStandbyApp({ verifier: options.verifier, log, leadership: source, retryAfterSeconds: Math.max(1, Math.ceil(retryMs / 1000)) }).fetch);

  const onQuarantine = (row: QuarantinedRow) => log.error(row, 'unreadable store row moved to the quarantine table');
  const onIdleError = (error: Error) => log.warn({ err: error.message }, 'a store connection failed while idle; the next query opens another');
  let said = false;
  let store: PostgresStore | undefined;
  while (!store) {
    try {
      store = await PostgresStore.open({ connection, fence: leadership, onQuarantine, onIdleError, ...(options.prefix ? { prefix: options.prefix } : {}) });
    } catch (error) {
      if (!said) log.warn({ err: (error as Error).message }, 'the store (PostgreSQL) cannot be opened yet; trying again');
      said = true;
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
  log.info('store (PostgreSQL) open, migrations applied');
  await leadership.acquire();
  return { name: options.name, store, leadership, source };
}
