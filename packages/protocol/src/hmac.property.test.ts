import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RequestVerifier, SIGNATURE_HEADERS, contentDigest, signRequest } from './hmac.js';
import { Keyring, fixedKeys } from './keys.js';
import { testKey } from './testing/keys.js';

/**
 * Property tests of the verifier: a signed request is accepted exactly once,
 * and any change to what the signature covers, or to the signature headers,
 * is refused.
 */
const key = testKey('hook-1');
const keys = new Keyring({ hook: fixedKeys([key]), agent: fixedKeys([testKey('agent-dock1-1')]) });
const authority = '[fd00::1]:8443';
const now = 1_800_000_000_000;

const method = fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH');
const path = fc.webPath().map((p) => `/v1${p.startsWith('/') ? p : `/${p}`}`);
const query = fc.option(fc.webQueryParameters(), { nil: undefined });
const body = fc.uint8Array({ maxLength: 512 });

interface Req {
  method: string;
  authority: string;
  path: string;
  body: Uint8Array;
  headers: Record<string, string>;
}

function verify(v: RequestVerifier, r: Req) {
  return v.verify({ method: r.method, authority: r.authority, path: r.path, body: r.body, headers: { get: (n) => r.headers[n] ?? null } });
}

const signed = fc.tuple(method, path, query, body, fc.integer({ min: -59_000, max: 59_000 })).map(([m, p, q, b, skew]): Req => {
  const full = q ? `${p}?${q}` : p;
  return { method: m, authority, path: full, body: b, headers: signRequest({ key, authority, method: m, path: full, body: b, now: now + skew }) };
});

function flipChar(text: string, index: number, alphabet: string): string {
  const i = index % text.length;
  const c = text[i]!;
  const next = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length] ?? alphabet[0]!;
  return text.slice(0, i) + (next === c ? alphabet[1]! : next) + text.slice(i + 1);
}

type Mutation = (r: Req, n: number) => Req;
const mutations: Record<string, Mutation> = {
  method: (r) => ({ ...r, method: r.method === 'GET' ? 'POST' : 'GET' }),
  path: (r, n) => ({ ...r, path: `${r.path}${n % 2 ? '/' : 'x'}` }),
  query: (r) => ({ ...r, path: r.path.includes('?') ? r.path.replace('?', '?z=1&') : `${r.path}?z=1` }),
  // An empty query is no query (RFC 9421: `?` either way; URL.search is '' for both): dropping one needs one.
  'drop query': (r) => ({ ...r, path: r.path.includes('?') && r.path.length > r.path.indexOf('?') + 1 ? r.path.slice(0, r.path.indexOf('?')) : `${r.path.replace(/\?$/, '')}?q` }),
  'body byte': (r, n) => {
    if (r.body.length === 0) return { ...r, body: Uint8Array.of(n & 0xff) };
    const b = Uint8Array.from(r.body);
    b[n % b.length] = (b[n % b.length]! + 1 + (n % 255)) & 0xff;
    return { ...r, body: b };
  },
  'body appended': (r, n) => ({ ...r, body: Uint8Array.from([...r.body, n & 0xff]) }),
  timestamp: (r, n) => ({ ...r, headers: { ...r.headers, [SIGNATURE_HEADERS.input]: r.headers[SIGNATURE_HEADERS.input]!.replace(/created=([0-9]+)/, (_m, c) => `created=${Number(c) + 1 + (n % 30)}`) } }),
  'expired timestamp': (r, n) => {
    const old = signRequest({ key, authority, method: r.method, path: r.path, body: r.body, now: now - 61_000 - (n % 100_000) * 1000 });
    return { ...r, headers: old };
  },
  nonce: (r, n) => ({ ...r, headers: { ...r.headers, [SIGNATURE_HEADERS.input]: r.headers[SIGNATURE_HEADERS.input]!.replace(/nonce="([0-9a-f]+)"/, (_m, x: string) => `nonce="${flipChar(x, n, '0123456789abcdef')}"`) } }),
  signature: (r, n) => ({ ...r, headers: { ...r.headers, [SIGNATURE_HEADERS.signature]: `unionize=:${flipChar(r.headers[SIGNATURE_HEADERS.signature]!.slice(10, -2), n % 43, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')}=:` } }),
  'upper-case label': (r) => ({ ...r, headers: { ...r.headers, [SIGNATURE_HEADERS.signature]: r.headers[SIGNATURE_HEADERS.signature]!.replace('unionize=', 'UNIONIZE=') } }),
  'header dropped': (r, n) => {
    const headers = { ...r.headers };
    delete headers[Object.values(SIGNATURE_HEADERS)[n % 3]!];
    return { ...r, headers };
  },
  'other secret': (r) => ({ ...r, headers: signRequest({ key: testKey('hook-1', 'x'), authority, method: r.method, path: r.path, body: r.body, now }) }),
  authority: (r, n) => ({ ...r, authority: n % 2 ? '[fd00::2]:8443' : '[fd00::1]:9443' }),
  'another peer signs it': (r) => ({ ...r, headers: signRequest({ key: testKey('agent-dock1-1', 'y'), authority, method: r.method, path: r.path, body: r.body, now }) }),
  'key id swapped': (r) => ({ ...r, headers: { ...r.headers, [SIGNATURE_HEADERS.input]: r.headers[SIGNATURE_HEADERS.input]!.replace('keyid="hook-1"', 'keyid="agent-dock1-1"') } }),
  'digest of another body': (r, n) => ({ ...r, headers: { ...r.headers, [SIGNATURE_HEADERS.digest]: contentDigest(Uint8Array.from([...r.body, n & 0xff])) } }),
};

describe('RequestVerifier under random requests', () => {
  it('accepts a signed request within the window exactly once', () => {
    fc.assert(
      fc.property(signed, (r) => {
        const v = new RequestVerifier({ keys, now: () => now, windowSeconds: 60 });
        expect(verify(v, r)).toMatchObject({ ok: true, peer: 'hook' });
        expect(verify(v, r)).toEqual({ ok: false, reason: 'nonce already used (replay)' });
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses every mutation of a signed request, and still accepts the original afterwards', () => {
    fc.assert(
      fc.property(signed, fc.constantFrom(...Object.keys(mutations)), fc.nat(), (r, which, n) => {
        const v = new RequestVerifier({ keys, now: () => now, windowSeconds: 60 });
        const mutated = mutations[which]!(r, n);
        expect(verify(v, mutated).ok).toBe(false);
        expect(verify(v, r)).toMatchObject({ ok: true, peer: 'hook' });
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses arbitrary signature headers', () => {
    fc.assert(
      fc.property(signed, fc.dictionary(fc.constantFrom(...Object.values(SIGNATURE_HEADERS)), fc.string({ unit: 'binary', maxLength: 100 })), (r, headers) => {
        const v = new RequestVerifier({ keys, now: () => now, windowSeconds: 60 });
        const forged = { ...r, headers: { ...r.headers, ...headers } };
        const same = Object.entries(headers).every(([k, value]) => r.headers[k] === value);
        expect(verify(v, forged).ok).toBe(same);
      }),
      { numRuns: 2000 },
    );
  });
});
