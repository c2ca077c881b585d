import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import type { Logger } from 'pino';
import { DEFAULT_MAX_BODY_BYTES, errorBody, hmacAuth, jsonErrorHandler, jsonNotFound, limitBody, type Health, type Ready, type RequestVerifier } from '@unionize/protocol';
import { orchestratorPeerMayCall } from './peer-access.js';
import { registerLeadershipRoute, type LeadershipSource } from './leadership-routes.js';

export interface StandbyAppDeps {
  verifier: RequestVerifier;
  log: Logger;
  leadership: LeadershipSource;
  /** Retry-After on each refusal: about when the lead may have changed. */
  retryAfterSeconds: number;
}

/**
 * What a standby orchestrator serves until it leads: liveness, who leads
 * (GET /v1/leadership, signed), and 503 with Retry-After for everything
 * else, lease events included. It journals nothing: the hook and
 * orchestratorctl try the next orchestrator on their list, and the hook's
 * spool keeps an event that none took (README, The orchestrator pair).
 * /readyz is 503 too, so a load balancer in front sends nothing here.
 */
export function createStandbyApp(deps: StandbyAppDeps): Hono {
  const app = new Hono();
  app.onError(jsonErrorHandler(deps.log));
  app.notFound(jsonNotFound);
  app.use(requestId());
  app.use(limitBody({ maxBytes: DEFAULT_MAX_BODY_BYTES }));
  app.get('/healthz', (c) => c.json({ ok: true } satisfies Health));
  app.get('/readyz', (c) => c.json({ ok: false, queued: 0 } satisfies Ready, 503));
  app.use('/v1/leadership', hmacAuth({
    verifier: deps.verifier,
    publicPaths: [],
    maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
    allow: orchestratorPeerMayCall,
    onRefused: (info) => deps.log.warn(info, 'request refused'),
  }));
  registerLeadershipRoute(app, deps.leadership);
  // Unsigned callers reach this too: it names no one (GET /v1/leadership, signed, says who leads).
  app.all('*', (c) => {
    c.header('retry-after', String(deps.retryAfterSeconds));
    return c.json(errorBody('STANDBY', 'this orchestrator stands by; try another'), 503);
  });
  return app;
}
