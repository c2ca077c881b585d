import type { MiddlewareHandler } from 'hono';
import { LEADER_EPOCH_HEADER } from '@unionize/protocol';
import { UnionizeError } from '../errors.js';

/**
 * The agent's side of a pair's fence (protocol's LEADER_EPOCH_HEADER): the
 * highest leadership epoch a request that changes something has carried.
 * One with a lower epoch comes from a leader that was deposed (its successor
 * has already called here) and is refused, 409 DEPOSED, before it does
 * anything. Requests without the header (an orchestrator alone) and reads
 * pass. Kept in memory: after a restart the first epoch seen sets it again.
 */
export class LeaderEpochs {
  #highest = 0;

  get highest(): number {
    return this.#highest;
  }

  middleware(): MiddlewareHandler {
    return async (c, next) => {
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
        const header = c.req.header(LEADER_EPOCH_HEADER);
        if (header !== undefined) {
          if (!/^[0-9]{1,15}$/.test(header)) throw new UnionizeError('INVALID_REQUEST', `${LEADER_EPOCH_HEADER} must be a whole number`);
          const epoch = Number(header);
          if (epoch < this.#highest) {
            throw new UnionizeError('DEPOSED', `the orchestrator's leadership epoch ${epoch} is older than ${this.#highest}: it no longer leads`);
          }
          this.#highest = epoch;
        }
      }
      await next();
    };
  }
}
