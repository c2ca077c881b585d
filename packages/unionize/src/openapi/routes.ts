import { EXPORT_CONTENT_TYPE, containerListSchema, containerViewSchema, createContainerSchema, errorBodySchema, keepContainerSchema, keepResultSchema, keptImageListSchema, openApiDocument, poolListSchema, poolsRequestSchema, type RouteDoc } from '@unionize/protocol';
import { z } from 'zod';

const error = (description: string) => ({ description, schema: errorBodySchema });
const unauthenticated = error('not signed, wrongly signed, expired or replayed');

/**
 * Every route unionize serves, once: the OpenAPI document is made from this
 * list and the protocol's zod schemas, and a unit test checks it against the
 * Hono app's routes.
 */
export const UNIONIZE_ROUTES: readonly RouteDoc[] = [
  {
    method: 'get', path: '/healthz', summary: 'Liveness, and whether Docker answers', auth: 'none', tags: ['health'],
    responses: { 200: { description: 'Docker answers', schema: z.object({ ok: z.literal(true) }) }, 503: { description: 'Docker does not answer', schema: errorBodySchema.extend({ ok: z.literal(false) }) } },
  },
  {
    method: 'get', path: '/metrics', summary: 'Prometheus metrics (text format)', auth: 'bearer', tags: ['health'],
    responses: { 200: { description: 'metrics', contentType: 'text/plain; version=0.0.4' }, 401: error('no or wrong bearer token'), 404: error('metrics are off: no [metrics] token_file') },
  },
  { method: 'get', path: '/v1/openapi.json', summary: 'This document', auth: 'none', tags: ['meta'], responses: { 200: { description: 'OpenAPI 3.1 document', contentType: 'application/json' } } },
  {
    method: 'post', path: '/v1/containers', summary: 'Make the container exist, run and be attached (idempotent by name)', auth: 'hmac', tags: ['containers'],
    body: createContainerSchema,
    responses: {
      201: { description: 'created, started or attached now', schema: containerViewSchema },
      200: { description: 'already running and attached: nothing done', schema: containerViewSchema },
      400: error('invalid request'),
      401: unauthenticated,
      409: error('a container of that name is not managed, differs, or cannot be started as it is'),
      500: error('the attach failed, or the container changed under it'),
      502: error('a Docker Engine API call failed'),
    },
  },
  { method: 'get', path: '/v1/containers', summary: 'Every managed container', auth: 'hmac', tags: ['containers'], responses: { 200: { description: 'containers', schema: containerListSchema }, 401: unauthenticated } },
  { method: 'get', path: '/v1/pools', summary: 'Warm pools: size wanted, members ready and starting, claims and misses', auth: 'hmac', tags: ['pools'], responses: { 200: { description: 'pools', schema: poolListSchema }, 401: unauthenticated } },
  {
    method: 'put', path: '/v1/pools', summary: 'The warm pools to keep (every one; one not named is emptied); members made otherwise or beyond a size go', auth: 'hmac', tags: ['pools'],
    body: poolsRequestSchema,
    responses: { 200: { description: 'pools now (maxMembers 0: this agent keeps none)', schema: poolListSchema }, 400: error('invalid request'), 401: unauthenticated },
  },
  {
    method: 'delete', path: '/v1/containers/:name', summary: 'Remove a managed container', auth: 'hmac', tags: ['containers'],
    responses: { 204: { description: 'removed' }, 400: error('invalid name'), 401: unauthenticated, 404: error('no managed container of that name') },
  },
  {
    method: 'post', path: '/v1/containers/:name/keep', summary: 'Commit a managed container to a kept image (unionize-kept/CLIENT:TAG); the oldest kept images go while all take more than maxBytes', auth: 'hmac', tags: ['kept'],
    body: keepContainerSchema,
    responses: { 201: { description: 'kept; with the images removed to stay under maxBytes', schema: keepResultSchema }, 400: error('invalid request'), 401: unauthenticated, 404: error('no managed container of that name'), 502: error('a Docker Engine API call failed') },
  },
  {
    method: 'get', path: '/v1/containers/:name/export', summary: 'The container as it is now, as a docker save tarball (gzip), streamed: committed (paused) to unionize-export/NAME:TAG, removed after', auth: 'hmac', tags: ['kept'],
    responses: { 200: { description: 'docker save, gzipped', contentType: EXPORT_CONTENT_TYPE }, 400: error('invalid name'), 401: unauthenticated, 404: error('no managed container of that name'), 502: error('a Docker Engine API call failed') },
  },
  {
    method: 'get', path: '/v1/kept/:id/export', summary: 'A kept image as a docker save tarball (gzip), streamed', auth: 'hmac', tags: ['kept'],
    responses: { 200: { description: 'docker save, gzipped', contentType: EXPORT_CONTENT_TYPE }, 400: error('invalid id'), 401: unauthenticated, 404: error('no kept image with that id'), 502: error('a Docker Engine API call failed') },
  },
  { method: 'get', path: '/v1/kept', summary: 'Every kept image, oldest first', auth: 'hmac', tags: ['kept'], responses: { 200: { description: 'kept images', schema: keptImageListSchema }, 401: unauthenticated } },
  {
    method: 'delete', path: '/v1/kept/:id', summary: 'Remove a kept image by id', auth: 'hmac', tags: ['kept'],
    responses: { 204: { description: 'removed' }, 400: error('invalid id'), 401: unauthenticated, 404: error('no kept image with that id') },
  },
];

let cached: Record<string, unknown> | undefined;

export function unionizeOpenApi(): Record<string, unknown> {
  cached ??= openApiDocument(
    { title: 'unionize', version: '1', description: 'The docker-host agent: creates, attaches, lists and removes containers for the orchestrator. Every /v1 route but this document is HMAC-signed.' },
    UNIONIZE_ROUTES,
  );
  return cached;
}
