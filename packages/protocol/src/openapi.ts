import { z } from 'zod';

/**
 * An OpenAPI 3.1 document made from the zod schemas the handlers already
 * validate with (zod 4's `z.toJSONSchema`; OpenAPI 3.1 schemas are JSON
 * Schema 2020-12), so the document cannot drift from what a route accepts.
 * Each daemon lists its routes once (`RouteDoc[]`); a unit test checks that
 * list against the Hono app's own route table, both ways.
 */

/** How a route is authenticated. */
export type RouteAuth = 'hmac' | 'none' | 'bearer' | 'session';

export interface ResponseDoc {
  description: string;
  /** JSON body; omit for no body or a non-JSON one (give `contentType`). */
  schema?: z.ZodType;
  contentType?: string;
}

export interface RouteDoc {
  method: 'get' | 'post' | 'delete' | 'put' | 'patch';
  /** Hono style: `/v1/clients/:id`. */
  path: string;
  summary: string;
  auth: RouteAuth;
  tags?: string[];
  query?: z.ZodObject;
  /** JSON request body. */
  body?: z.ZodType;
  /** A non-JSON request body, e.g. a login form. */
  bodyContentType?: string;
  responses: Record<number, ResponseDoc>;
}

export interface ApiInfo {
  title: string;
  version: string;
  description: string;
}

/** `{ "error": { "code", "message" } }`, every error answer of both daemons. */
export const errorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** `/v1/clients/:id` → `/v1/clients/{id}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const SECURITY_SCHEMES = {
  hmac: {
    type: 'apiKey',
    in: 'header',
    name: 'signature',
    description:
      'RFC 9421 HTTP Message Signature with hmac-sha256 and the caller\'s own key (its id in `keyid`): ' +
      '`Signature-Input: unionize=("@method" "@authority" "@path" "@query" "content-digest");created=UNIX;nonce="HEX32";keyid="ID";alg="hmac-sha256"`, ' +
      '`Signature: unionize=:BASE64:`, `Content-Digest: sha-256=:BASE64:` (RFC 9530). 60 s window, each nonce once; ' +
      'a key may call only what its peer may (403 otherwise). The README, API, has the signature base.',
  },
  bearer: { type: 'http', scheme: 'bearer', description: 'The token in `[metrics] token_file`.' },
  session: {
    type: 'apiKey',
    in: 'cookie',
    name: 'dashboard_session',
    description: 'Set by POST /dashboard/login with the operator token in `[dashboard] token_file`.',
  },
} as const;

function operation(route: RouteDoc): Record<string, unknown> {
  const parameters: unknown[] = [];
  for (const name of route.path.match(/:([A-Za-z0-9_]+)/g) ?? []) {
    parameters.push({ name: name.slice(1), in: 'path', required: true, schema: { type: 'string' } });
  }
  if (route.query) {
    const shape = route.query.shape as Record<string, z.ZodType>;
    for (const [name, schema] of Object.entries(shape)) {
      parameters.push({ name, in: 'query', required: !schema.safeParse(undefined).success, schema: jsonSchema(schema, 'input') });
    }
  }
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    const content = response.schema
      ? { [response.contentType ?? 'application/json']: { schema: jsonSchema(response.schema, 'output') } }
      : response.contentType
        ? { [response.contentType]: {} }
        : undefined;
    responses[status] = { description: response.description, ...(content ? { content } : {}) };
  }
  const body = route.body
    ? { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } }
    : route.bodyContentType
      ? { required: true, content: { [route.bodyContentType]: {} } }
      : undefined;
  return {
    summary: route.summary,
    operationId: `${route.method}${openApiPath(route.path).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    ...(route.tags ? { tags: route.tags } : {}),
    security: route.auth === 'none' ? [] : [{ [route.auth]: [] }],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body ? { requestBody: body } : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document for `routes`. */
export function openApiDocument(info: ApiInfo, routes: readonly RouteDoc[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    const item = (paths[path] ??= {});
    if (item[route.method]) throw new Error(`openApiDocument: ${route.method.toUpperCase()} ${route.path} is listed twice`);
    item[route.method] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: { securitySchemes: SECURITY_SCHEMES, schemas: { Error: jsonSchema(errorBodySchema, 'output') } },
  };
}

/**
 * The routes a Hono app serves, as `METHOD path` (its `app.routes`, less the
 * middleware: `app.use` entries are method ALL). For the route-table test.
 */
export function servedRoutes(routes: ReadonlyArray<{ method: string; path: string }>): string[] {
  const served = new Set<string>();
  for (const r of routes) if (r.method !== 'ALL') served.add(`${r.method.toUpperCase()} ${r.path}`);
  return [...served].sort();
}

/** The routes an OpenAPI document lists, as `METHOD path` with Hono's `:param` form. */
export function documentedRoutes(document: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(item)) out.push(`${method.toUpperCase()} ${path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1')}`);
  }
  return out.sort();
}
