import { randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import { errorBody } from '@unionize/protocol';
import { chartAssets, type ChartAssets } from './assets.js';
import type { DashboardAuth } from './session.js';
import { SESSION_COOKIE } from './session.js';
import { dashboardPage, loginPage } from './page.js';
import type { StateHub } from './snapshot.js';

export interface DashboardDeps {
  /** Absent when `[dashboard] token_file` is not set: every route answers 404. */
  auth?: DashboardAuth | undefined;
  hub?: StateHub | undefined;
  /** Keep-alive comment on the event stream, ms (proxies and phones drop silent streams). */
  keepAliveMs?: number;
  /** The chart library's files; read from node_modules once by default. */
  assets?: ChartAssets;
}

/** Every dashboard route, for the OpenAPI document and its route check. */
export const DASHBOARD_BASE = '/dashboard';

function securityHeaders(c: Context, nonce?: string): void {
  c.header(
    'content-security-policy',
    [
      "default-src 'none'",
      nonce ? `script-src 'nonce-${nonce}'` : '',
      nonce ? `style-src 'nonce-${nonce}'` : '',
      "connect-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].filter(Boolean).join('; '),
  );
  c.header('x-content-type-options', 'nosniff');
  c.header('referrer-policy', 'no-referrer');
  c.header('cache-control', 'no-store');
}

/**
 * The read-only dashboard at /dashboard, over the API's own TLS listener,
 * outside /v1 (no HMAC: a browser cannot sign). GET /dashboard shows the
 * login form or, with a session, the page; the page follows
 * /dashboard/events (server-sent events: the whole state on each change)
 * and draws its charts with uPlot, served here from node_modules under
 * /dashboard/assets/ (no CDN), to a session only.
 */
export function createDashboard(deps: DashboardDeps): Hono {
  const app = new Hono();
  const keepAliveMs = deps.keepAliveMs ?? 15_000;
  const assets = deps.assets ?? chartAssets();

  app.use('*', async (c, next) => {
    if (!deps.auth || !deps.hub) return c.json(errorBody('NOT_FOUND', 'the dashboard is off: set [dashboard] token_file'), 404);
    return next();
  });

  const signedIn = (c: Context) => deps.auth!.checkSession(getCookie(c, SESSION_COOKIE));

  app.get('/', (c) => {
    const nonce = randomBytes(16).toString('base64');
    securityHeaders(c, nonce);
    if (!signedIn(c)) return c.html(loginPage(nonce));
    return c.html(dashboardPage(nonce, new URL(c.req.url).host, assets, `${DASHBOARD_BASE}/assets`));
  });

  // Content-hashed names: a browser keeps them until the library changes (If-None-Match answered too).
  app.get('/assets/:name', (c) => {
    if (!signedIn(c)) return c.json(errorBody('UNAUTHENTICATED', 'sign in at /dashboard'), 401);
    const asset = [assets.script, assets.style].find((a) => a.name === c.req.param('name'));
    if (!asset) return c.json(errorBody('NOT_FOUND', 'no such dashboard asset'), 404);
    c.header('x-content-type-options', 'nosniff');
    c.header('cache-control', 'private, max-age=31536000, immutable');
    c.header('etag', asset.etag);
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304);
    c.header('content-type', asset.contentType);
    return c.body(asset.body);
  });

  app.post('/login', async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const token = typeof form.token === 'string' ? form.token : '';
    if (!deps.auth!.checkToken(token)) {
      const nonce = randomBytes(16).toString('base64');
      securityHeaders(c, nonce);
      return c.html(loginPage(nonce, 'That is not the operator token.'), 401);
    }
    setCookie(c, SESSION_COOKIE, deps.auth!.newSession(), {
      path: DASHBOARD_BASE,
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
      maxAge: deps.auth!.ttlSeconds,
    });
    securityHeaders(c);
    return c.redirect(DASHBOARD_BASE, 303);
  });

  app.post('/logout', (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: DASHBOARD_BASE, secure: true, httpOnly: true, sameSite: 'Strict' });
    securityHeaders(c);
    return c.redirect(DASHBOARD_BASE, 303);
  });

  app.get('/events', (c) => {
    if (!signedIn(c)) return c.json(errorBody('UNAUTHENTICATED', 'sign in at /dashboard'), 401);
    securityHeaders(c);
    return streamSSE(c, async (stream) => {
      let queue = Promise.resolve();
      const unsubscribe = await deps.hub!.subscribe((json) => {
        queue = queue.then(() => stream.writeSSE({ event: 'state', data: json })).catch(() => undefined);
      });
      stream.onAbort(unsubscribe);
      try {
        while (!stream.aborted && !stream.closed) {
          await stream.sleep(keepAliveMs);
          queue = queue.then(() => stream.write(': keep-alive\n\n')).then(() => undefined).catch(() => undefined);
          await queue;
        }
      } finally {
        unsubscribe();
      }
    });
  });

  return app;
}
