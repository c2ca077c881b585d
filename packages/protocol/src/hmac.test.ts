import { describe, expect, it } from 'vitest';
import { RequestVerifier, SIGNATURE_HEADERS, SIGNED_BEFORE_START, signRequest } from './hmac.js';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const now = 1_800_000_000_000;

function headersOf(h: Record<string, string>) {
  return { get: (name: string) => h[name] ?? null };
}

function verifier() {
  return new RequestVerifier({ secret, now: () => now, windowSeconds: 60 });
}

describe('HMAC signing', () => {
  const signed = signRequest({ secret, method: 'POST', path: '/v1/lease-events', body: '{"a":1}', now });

  it('verifies a signed request once, and refuses its replay', () => {
    const v = verifier();
    const input = { method: 'POST', path: '/v1/lease-events', body: '{"a":1}', headers: headersOf(signed) };
    expect(v.verify(input)).toEqual({ ok: true });
    expect(v.verify(input)).toEqual({ ok: false, reason: 'nonce already used (replay)' });
  });

  it('refuses after a restart the replay of a request the previous run took: signed before the start', () => {
    const input = { method: 'POST', path: '/v1/lease-events', body: '{"a":1}', headers: headersOf(signed) };
    expect(verifier().verify(input)).toEqual({ ok: true });
    // The next run starts 5 s later, its nonce cache empty; the replay comes within the window.
    const later = now + 5_000;
    const restarted = new RequestVerifier({ secret, now: () => later + 1_000, windowSeconds: 60, notBefore: later });
    expect(restarted.verify(input)).toMatchObject({ ok: false, code: SIGNED_BEFORE_START });
    // A request signed in the start's second may be from before it: refused too; one signed after it is taken.
    const sameSecond = signRequest({ secret, method: 'GET', path: '/', body: '', now: later + 999 - (later % 1000) });
    expect(restarted.verify({ method: 'GET', path: '/', body: '', headers: headersOf(sameSecond) })).toMatchObject({ code: SIGNED_BEFORE_START });
    const fresh = signRequest({ secret, method: 'GET', path: '/', body: '', now: later + 1_000 });
    expect(restarted.verify({ method: 'GET', path: '/', body: '', headers: headersOf(fresh) })).toEqual({ ok: true });
  });

  it('checks the signature before the start: a forged old request is refused as badly signed', () => {
    const forged = { ...signed, [SIGNATURE_HEADERS.signature]: '0'.repeat(64) };
    const restarted = new RequestVerifier({ secret, now: () => now + 6_000, notBefore: now + 5_000 });
    expect(restarted.verify({ method: 'POST', path: '/v1/lease-events', body: '{"a":1}', headers: headersOf(forged) })).toEqual({ ok: false, reason: 'bad signature' });
  });

  it.each([
    ['another body', { body: '{"a":2}' }],
    ['another path', { path: '/v1/clients' }],
    ['another method', { method: 'PUT' }],
    ['an added query', { path: '/v1/lease-events?x=1' }],
  ])('refuses %s', (_what, change) => {
    const input = { method: 'POST', path: '/v1/lease-events', body: '{"a":1}', headers: headersOf(signed), ...change };
    expect(verifier().verify(input)).toEqual({ ok: false, reason: 'bad signature' });
  });

  it('refuses another secret, an old timestamp and missing headers', () => {
    const other = signRequest({ secret: Buffer.from('x'.repeat(32)), method: 'GET', path: '/', body: '', now });
    expect(verifier().verify({ method: 'GET', path: '/', body: '', headers: headersOf(other) }).ok).toBe(false);
    const old = signRequest({ secret, method: 'GET', path: '/', body: '', now: now - 61_000 });
    expect(verifier().verify({ method: 'GET', path: '/', body: '', headers: headersOf(old) })).toEqual({
      ok: false,
      reason: 'timestamp outside the accepted window',
    });
    expect(verifier().verify({ method: 'GET', path: '/', body: '', headers: headersOf({}) })).toEqual({
      ok: false,
      reason: 'request is not signed',
    });
    const garbled = { ...signed, [SIGNATURE_HEADERS.signature]: 'zz' };
    expect(verifier().verify({ method: 'POST', path: '/v1/lease-events', body: '{"a":1}', headers: headersOf(garbled) }).ok).toBe(false);
  });

  it('forgets nonces after the window and bounds the cache', () => {
    let t = now;
    const v = new RequestVerifier({ secret, now: () => t, maxNonces: 2 });
    const sign = () => headersOf(signRequest({ secret, method: 'GET', path: '/', body: '', now: t }));
    expect(v.verify({ method: 'GET', path: '/', body: '', headers: sign() }).ok).toBe(true);
    expect(v.verify({ method: 'GET', path: '/', body: '', headers: sign() }).ok).toBe(true);
    expect(v.verify({ method: 'GET', path: '/', body: '', headers: sign() })).toEqual({ ok: false, reason: 'nonce cache full, try again', busy: true });
    t += 121_000;
    expect(v.verify({ method: 'GET', path: '/', body: '', headers: sign() }).ok).toBe(true);
  });

  it('keeps up a steady load for many windows, forgetting what expired and refusing replays of what did not', () => {
    let t = now;
    // 1,000 requests a second against a 2 s window: about 3,000 nonces live at once.
    const v = new RequestVerifier({ secret, now: () => t, windowSeconds: 2, maxNonces: 3500 });
    const get = (headers: Record<string, string>) => v.verify({ method: 'GET', path: '/', body: '', headers: headersOf(headers) });
    let last: Record<string, string> = {};
    const refused: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      t += 1;
      last = signRequest({ secret, method: 'GET', path: '/', body: '', now: t });
      const result = get(last);
      if (!result.ok) refused.push(`${i}: ${result.reason}`);
    }
    expect(refused.slice(0, 3)).toEqual([]);
    expect(get(last)).toEqual({ ok: false, reason: 'nonce already used (replay)' });
  });

  it('makes a new 32-hex-digit nonce for each request', () => {
    const nonces = new Set(Array.from({ length: 1000 }, () => signRequest({ secret, method: 'GET', path: '/', body: '' })[SIGNATURE_HEADERS.nonce]));
    expect(nonces.size).toBe(1000);
    for (const nonce of nonces) expect(nonce).toMatch(/^[0-9a-f]{32}$/);
  });
});
