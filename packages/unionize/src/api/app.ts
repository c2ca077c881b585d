import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import {
  bearerAuth,
  EXPORT_CONTENT_TYPE,
  containerNameSchema,
  createContainerSchema,
  errorBody,
  hmacAuth,
  imageIdSchema,
  invalidRequest,
  isDhcpAddress,
  keepContainerSchema,
  jsonErrorHandler,
  poolsRequestSchema,
  type PoolList,
  jsonNotFound,
  limitBody,
  type CreateContainerRequest,
  type RequestVerifier,
} from '@unionize/protocol';
import { Hono, type Context } from 'hono';
import { requestId } from 'hono/request-id';
import type { Logger } from 'pino';
import type { Attacher } from '../attach/native.js';
import type { NetworkConfig } from '../config.js';
import type { DockerClient } from '../docker/docker-client.js';
import { UnionizeError } from '../errors.js';
import type { Isolation } from '../isolation/isolation.js';
import type { KeptImages } from '../kept/kept-images.js';
import { routeLabel, type UnionizeMetrics } from '../metrics/metrics.js';
import { unionizeOpenApi } from '../openapi/routes.js';
import { parseCidr, prefixContains, sameAddress } from '../net/ipv6.js';
import type { WarmPool } from '../pool/warm-pool.js';
import { LeaderEpochs } from './leader-epoch.js';
import { Provisioner } from './provisioner.js';

export interface AppDeps {
  docker: DockerClient;
  attacher: Attacher;
  verifier: RequestVerifier;
  network: Pick<NetworkConfig, 'gateway'>;
  log: Logger;
  /** Who may reach which container (`[isolation]`); none: no filter. */
  isolation?: Isolation;
  /** Prometheus metrics; /metrics is served only with `metricsToken` too. */
  metrics?: UnionizeMetrics;
  /** Bearer token for /metrics (`[metrics] token_file`): Prometheus cannot sign requests. */
  metricsToken?: Buffer;
  /** Kept images (profiles' `keep = true`); none: those routes answer 404. */
  kept?: KeptImages;
  /** Warm pools (`[pool] max_containers` > 0); none: PUT /v1/pools keeps nothing, and says so. */
  pool?: WarmPool;
  /** The one the daemon restored its filter and pools with; else one is made here (tests). */
  provisioner?: Provisioner;
  /** The highest leadership epoch seen (leader-epoch.ts); else one of the app's own. */
  leaderEpochs?: LeaderEpochs;
}

type Env = { Variables: { requestId: string; log: Logger } };

/** Unsigned: health, the API's description, and /metrics (which has a bearer token of its own). */
const PUBLIC_PATHS = ['/healthz', '/v1/openapi.json', '/metrics'];

/** fe80::/10: a link-local gateway is reachable from any address on eth1. */
const isLinkLocal = (address: string) => /^fe[89ab]/i.test(address);

/** The default route needs its gateway on eth1's prefix; refuse here rather than fail in `ip route`. */
function checkAddressFitsGateway(req: CreateContainerRequest, gateway: string): void {
  if (isDhcpAddress(req.address)) return; // router advertisements give the route
  const cidr = parseCidr(req.address);
  if (sameAddress(cidr.address, gateway)) {
    throw new UnionizeError('INVALID_REQUEST', `invalid request body: address: ${req.address} is the gateway's address`);
  }
  if (!isLinkLocal(gateway) && !prefixContains(cidr, gateway)) {
    throw new UnionizeError('INVALID_REQUEST', `invalid request body: address: gateway ${gateway} is not on ${req.address}`);
  }
}

async function jsonBody(c: Context<Env>): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new UnionizeError('INVALID_REQUEST', 'invalid request body: not JSON');
  }
}

/** unionize's HTTP API. Everything but /healthz needs an HMAC signature. */
export function createApp(deps: AppDeps): Hono<Env> {
  const { docker, attacher, verifier, network, log, metrics } = deps;
  const provisioner = deps.provisioner ?? new Provisioner({ docker, attacher, log, ...(deps.isolation ? { isolation: deps.isolation } : {}), ...(deps.pool ? { pool: deps.pool } : {}) });
  const app = new Hono<Env>();
  const handleError = jsonErrorHandler(log);

  app.use(requestId());
  app.use(async function logRequest(c, next) {
    const started = performance.now();
    const child = log.child({ requestId: c.get('requestId') });
    c.set('log', child);
    await next();
    const entry = { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) };
    if (metrics) {
      const route = routeLabel(c);
      metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
      metrics.requestSeconds.observe({ method: c.req.method, route }, entry.ms / 1000);
    }
    if (PUBLIC_PATHS.includes(c.req.path) && c.res.ok) child.debug(entry, 'request');
    else child.info(entry, 'request');
  });
  // Counted as it streams in: an oversized chunked body is cut off, not buffered.
  app.use(limitBody());
  app.use(
    hmacAuth({
      verifier,
      publicPaths: PUBLIC_PATHS,
      onRefused: (info) => log.warn(info, 'request refused'),
    }),
  );
  // After the signature: only a signed request moves the highest epoch (leader-epoch.ts).
  app.use((deps.leaderEpochs ?? new LeaderEpochs()).middleware());

  app.get('/healthz', async (c) => {
    try {
      await docker.ping();
      return c.json({ ok: true });
    } catch (error) {
      return c.json({ ok: false, ...errorBody('DOCKER_UNREACHABLE', (error as Error).message) }, 503);
    }
  });

  const metricsAuth = deps.metricsToken ? bearerAuth({ token: deps.metricsToken }) : undefined;
  app.get('/metrics', async (c, next) => {
    if (!metricsAuth || !metrics) return c.json(errorBody('NOT_FOUND', 'metrics are off: set [metrics] token_file'), 404);
    return metricsAuth(c, next);
  }, async (c) => c.text(await metrics!.registry.metrics(), 200, { 'content-type': metrics!.registry.contentType }));

  app.get('/v1/openapi.json', (c) => c.json(unionizeOpenApi()));

  app.post('/v1/containers', async (c) => {
    const parsed = createContainerSchema.safeParse(await jsonBody(c));
    if (!parsed.success) throw invalidRequest(parsed.error);
    checkAddressFitsGateway(parsed.data, network.gateway);
    if (isDhcpAddress(parsed.data.address) && attacher.dhcp === false) {
      // Refused before a container is made for nothing.
      throw new UnionizeError('INVALID_REQUEST', 'invalid request body: address: dhcp needs [network] attach = native on this agent');
    }
    const result = await provisioner.ensure(parsed.data, c.get('log'));
    return c.json(result.view, result.changed ? 201 : 200);
  });

  app.get('/v1/containers', async (c) => c.json({ containers: await provisioner.list() }));

  const pools = (): PoolList => ({ pools: deps.pool?.status() ?? [], maxMembers: deps.pool?.maxMembers ?? 0 });
  app.get('/v1/pools', (c) => c.json(pools()));
  app.put('/v1/pools', async (c) => {
    const parsed = poolsRequestSchema.safeParse(await jsonBody(c));
    if (!parsed.success) throw invalidRequest(parsed.error);
    const names = parsed.data.pools.map((p) => p.name);
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) throw new UnionizeError('INVALID_REQUEST', `invalid request body: pools: ${twice} is named twice`);
    await deps.pool?.setSpecs(parsed.data.pools);
    return c.json(pools());
  });

  app.delete('/v1/containers/:name', async (c) => {
    const name = containerNameSchema.safeParse(c.req.param('name'));
    if (!name.success) throw invalidRequest(name.error, 'container name');
    if (!(await provisioner.remove(name.data, c.get('log')))) {
      throw new UnionizeError('NOT_FOUND', `no managed container ${name.data}`);
    }
    return c.body(null, 204);
  });

  const kept = () => {
    if (!deps.kept) throw new UnionizeError('NOT_FOUND', 'this agent keeps no images');
    return deps.kept;
  };

  app.post('/v1/containers/:name/keep', async (c) => {
    const name = containerNameSchema.safeParse(c.req.param('name'));
    if (!name.success) throw invalidRequest(name.error, 'container name');
    const parsed = keepContainerSchema.safeParse(await jsonBody(c));
    if (!parsed.success) throw invalidRequest(parsed.error);
    return c.json(await kept().keep(name.data, parsed.data, c.get('log')), 201);
  });

  app.get('/v1/kept', async (c) => c.json({ images: await kept().list() }));

  /** A `docker save` tarball, gzipped, streamed as Docker writes it. */
  const gzipStream = (body: Readable) => new Response(Readable.toWeb(body) as ReadableStream, { status: 200, headers: { 'content-type': EXPORT_CONTENT_TYPE } });

  app.get('/v1/kept/:id/export', async (c) => {
    const id = imageIdSchema.safeParse(c.req.param('id'));
    if (!id.success) throw invalidRequest(id.error, 'image id');
    return gzipStream(await kept().exportKept(id.data));
  });

  app.get('/v1/containers/:name/export', async (c) => {
    const name = containerNameSchema.safeParse(c.req.param('name'));
    if (!name.success) throw invalidRequest(name.error, 'container name');
    return gzipStream(await kept().exportContainer(name.data, c.get('log')));
  });

  app.delete('/v1/kept/:id', async (c) => {
    const id = imageIdSchema.safeParse(c.req.param('id'));
    if (!id.success) throw invalidRequest(id.error, 'image id');
    if (!(await kept().remove(id.data))) throw new UnionizeError('NOT_FOUND', `no kept image ${id.data}`);
    return c.body(null, 204);
  });

  app.notFound(jsonNotFound);
  app.onError((error, c) => {
    // Docker and attach failures are ours to explain in the log; the caller gets the short form.
    if (error instanceof UnionizeError && error.status >= 500) {
      (c.get('log') ?? log).error({ err: error, code: error.code }, error.message);
    }
    return handleError(error, c);
  });
  return app;
}
