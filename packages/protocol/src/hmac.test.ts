import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { RequestVerifier, SIGNATURE_HEADERS, SIGNED_BEFORE_START, contentDigest, signRequest, type SignInput } from './hmac.js';
import { Keyring, fixedKeys } from './keys.js';
import { testKey } from './testing/keys.js';

const hook = testKey('hook-1');
const operator = testKey('operator-1');
const keys = new Keyring({ hook: fixedKeys([hook]), operator: fixedKeys([operator]) });
const now = 1_800_000_000_000;
const authority = '[fd00::1]:8443';

function headersOf(h: Record<string, string>) {
  return { get: (name: string) => h[name] ?? null };
}

function verifier() {
  return new RequestVerifier({ keys, now: () => now, windowSeconds: 60 });
}

function sign(input: Partial<SignInput> = {}): Record<string, string> {
  return signRequest({ key: hook, method: 'POST', authority, path: '/v1/lease-events', body: '{"a":1}', now, ...input });
}

const request = { method: 'POST', authority, path: '/v1/lease-events', body: '{"a":1}' };

describe('request signatures (RFC 9421 shape, HMAC-SHA256)', () => {
  const signed = sign();

  it('writes the three headers in the one shape, over the signature base of RFC 9421 section 2.5', () => {
    const h = signRequest({ key: hook, method: 'POST', authority, path: '/v1/lease-events?x=1', body: '{"a":1}', now, nonce: 'ab'.repeat(16) });
    expect(h[SIGNATURE_HEADERS.digest]).toBe(`sha-256=:${createHash('sha256').update('{"a":1}').digest('base64')}:`);
    const params = `("@method" "@authority" "@path" "@query" "content-digest");created=1800000000;nonce="${'ab'.repeat(16)}";keyid="hook-1";alg="hmac-sha256"`;
    expect(h[SIGNATURE_HEADERS.input]).toBe(`unionize=${params}`);
    const base = [
      '"@method": POST',
      '"@authority": [fd00::1]:8443',
      '"@path": /v1/lease-events',
      '"@query": ?x=1',
      `"content-digest": ${contentDigest('{"a":1}')}`,
      `"@signature-params": ${params}`,
    ].join('\n');
    expect(h[SIGNATURE_HEADERS.signature]).toBe(`unionize=:${createHmac('sha256', hook.secret).update(base).digest('base64')}:`);
  });

  it('verifies a signed request once, names its peer and key, and refuses its replay', () => {
    const v = verifier();
    const input = { ...request, headers: headersOf(signed) };
    expect(v.verify(input)).toEqual({ ok: true, peer: 'hook', keyId: 'hook-1' });
    expect(v.verify(input)).toEqual({ ok: false, reason: 'nonce already used (replay)' });
  });

  it('refuses after a restart the replay of a request the previous run took: signed before the start', () => {
    const input = { ...request, headers: headersOf(signed) };
    expect(verifier().verify(input)).toMatchObject({ ok: true });
    // The next run starts 5 s later, its nonce cache empty; the replay comes within the window.
    const later = now + 5_000;
    const restarted = new RequestVerifier({ keys, now: () => later + 1_000, windowSeconds: 60, notBefore: later });
    expect(restarted.verify(input)).toMatchObject({ ok: false, code: SIGNED_BEFORE_START });
    // A request signed in the start's second may be from before it: refused too; one signed after it is taken.
    const get = { method: 'GET', authority, path: '/', body: '' };
    const sameSecond = sign({ ...get, now: later + 999 - (later % 1000) });
    expect(restarted.verify({ ...get, headers: headersOf(sameSecond) })).toMatchObject({ code: SIGNED_BEFORE_START });
    const fresh = sign({ ...get, now: later + 1_000 });
    expect(restarted.verify({ ...get, headers: headersOf(fresh) })).toMatchObject({ ok: true });
  });

  it('checks the signature before the start: a forged old request is refused as badly signed', () => {
    const forged = { ...signed, [SIGNATURE_HEADERS.signature]: `unionize=:${Buffer.alloc(32).toString('base64')}:` };
    const restarted = new RequestVerifier({ keys, now: () => now + 6_000, notBefore: now + 5_000 });
    expect(restarted.verify({ ...request, headers: headersOf(forged) })).toEqual({ ok: false, reason: 'bad signature' });
  });

  it.each([
    ['another path', { path: '/v1/clients' }],
    ['another method', { method: 'PUT' }],
    ['an added query', { path: '/v1/lease-events?x=1' }],
    ['another host (a request signed for one server, sent to another)', { authority: '[fd00::2]:8443' }],
    ['another port', { authority: '[fd00::1]:9443' }],
  ])('refuses %s', (_what, change) => {
    expect(verifier().verify({ ...request, headers: headersOf(signed), ...change })).toEqual({ ok: false, reason: 'bad signature' });
  });

  it('refuses another body by its digest', () => {
    expect(verifier().verify({ ...request, body: '{"a":2}', headers: headersOf(signed) })).toEqual({ ok: false, reason: 'content-digest does not match the body' });
    const redigested = { ...signed, [SIGNATURE_HEADERS.digest]: contentDigest('{"a":2}') };
    expect(verifier().verify({ ...request, body: '{"a":2}', headers: headersOf(redigested) })).toEqual({ ok: false, reason: 'bad signature' });
  });

  it('refuses an unknown key id, a known id with another secret, an old timestamp and missing headers', () => {
    const stranger = sign({ key: testKey('agent-dock1-1') });
    expect(verifier().verify({ ...request, headers: headersOf(stranger) })).toEqual({ ok: false, reason: 'unknown key id agent-dock1-1' });
    const impostor = sign({ key: testKey('hook-1', 'another secret') });
    expect(verifier().verify({ ...request, headers: headersOf(impostor) })).toEqual({ ok: false, reason: 'bad signature' });
    const old = sign({ now: now - 61_000 });
    expect(verifier().verify({ ...request, headers: headersOf(old) })).toEqual({ ok: false, reason: 'timestamp outside the accepted window' });
    expect(verifier().verify({ ...request, headers: headersOf({}) })).toEqual({ ok: false, reason: 'request is not signed' });
    const garbled = { ...signed, [SIGNATURE_HEADERS.signature]: 'zz' };
    expect(verifier().verify({ ...request, headers: headersOf(garbled) }).ok).toBe(false);
  });

  it('takes only its one shape of Signature-Input: other components, orders or labels are refused', () => {
    const input = signed[SIGNATURE_HEADERS.input]!;
    for (const other of [
      input.replace('unionize=', 'sig1='),
      input.replace(' "content-digest"', ''),
      input.replace('"@method" "@authority"', '"@authority" "@method"'),
      input.replace('alg="hmac-sha256"', 'alg="rsa-pss-sha512"'),
      `${input};expires=1`,
      input.replace(/keyid="[^"]*"/, 'keyid="../../etc/passwd"'),
    ]) {
      expect(verifier().verify({ ...request, headers: headersOf({ ...signed, [SIGNATURE_HEADERS.input]: other }) }).ok, other).toBe(false);
    }
  });

  it('forgets nonces after the window and bounds the cache', () => {
    let t = now;
    const v = new RequestVerifier({ keys, now: () => t, maxNonces: 2 });
    const get = { method: 'GET', authority, path: '/', body: '' };
    const signNow = () => headersOf(sign({ ...get, now: t }));
    expect(v.verify({ ...get, headers: signNow() }).ok).toBe(true);
    expect(v.verify({ ...get, headers: signNow() }).ok).toBe(true);
    expect(v.verify({ ...get, headers: signNow() })).toEqual({ ok: false, reason: 'nonce cache full, try again', busy: true });
    t += 121_000;
    expect(v.verify({ ...get, headers: signNow() }).ok).toBe(true);
  });

  it('forgets expired nonces on its own when no request comes, and stops its timer when none are left', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      let t = now;
      const v = new RequestVerifier({ keys, now: () => t, windowSeconds: 10 });
      const get = { method: 'GET', authority, path: '/', body: '' };
      for (let i = 0; i < 50; i++) expect(v.verify({ ...get, headers: headersOf(sign({ ...get, now: t })) }).ok).toBe(true);
      expect(v.remembered).toBe(50);
      t += 5_000;
      vi.advanceTimersByTime(10_000);
      expect(v.remembered).toBe(50); // still within the window
      t += 6_000;
      vi.advanceTimersByTime(10_000);
      expect(v.remembered).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps up a steady load for many windows, forgetting what expired and refusing replays of what did not', () => {
    let t = now;
    // 1,000 requests a second against a 2 s window: about 3,000 nonces live at once.
    const v = new RequestVerifier({ keys, now: () => t, windowSeconds: 2, maxNonces: 3500 });
    const get = { method: 'GET', authority, path: '/', body: '' };
    let last: Record<string, string> = {};
    const refused: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      t += 1;
      last = sign({ ...get, now: t });
      const result = v.verify({ ...get, headers: headersOf(last) });
      if (!result.ok) refused.push(`${i}: ${result.reason}`);
    }
    expect(refused.slice(0, 3)).toEqual([]);
    expect(v.verify({ ...get, headers: headersOf(last) })).toEqual({ ok: false, reason: 'nonce already used (replay)' });
  });

  it('makes a new 32-hex-digit nonce for each request', () => {
    const nonces = new Set(Array.from({ length: 1000 }, () => /nonce="([^"]*)"/.exec(sign()[SIGNATURE_HEADERS.input]!)![1]));
    expect(nonces.size).toBe(1000);
    for (const nonce of nonces) expect(nonce).toMatch(/^[0-9a-f]{32}$/);
  });
});
