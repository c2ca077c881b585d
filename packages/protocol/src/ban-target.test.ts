import { describe, expect, it } from 'vitest';
import { banTargetText, parseBanTarget } from './orchestrator-api.js';

describe('parseBanTarget', () => {
  it('takes six bytes for a MAC and more (or id:) for a DUID, in lower case', () => {
    expect(parseBanTarget('52:54:00:AB:cd:01')).toEqual({ ok: true, target: { kind: 'mac', value: '52:54:00:ab:cd:01' } });
    expect(parseBanTarget(' 00:03:00:01:52:54:00:ab:cd:01 ')).toEqual({ ok: true, target: { kind: 'duid', value: '00:03:00:01:52:54:00:ab:cd:01' } });
    expect(parseBanTarget('id:00:02:00:00:00:09')).toEqual({ ok: true, target: { kind: 'duid', value: '00:02:00:00:00:09' } });
    expect(banTargetText({ kind: 'duid', value: '00:02:00:00:00:09' })).toBe('id:00:02:00:00:00:09');
    expect(banTargetText({ kind: 'duid', value: '00:03:00:01:52:54:00:ab:cd:01' })).toBe('00:03:00:01:52:54:00:ab:cd:01');
  });

  it('refuses anything else with an error that says what is expected', () => {
    for (const bad of ['', 'nope', '52-54-00-ab-cd-01', '52:54:00:ab:cd:0g', '5:54:00:ab:cd:01:02', 'id:', '*', '00:03,ignore', `00${':00'.repeat(130)}`]) {
      const parsed = parseBanTarget(bad);
      expect(parsed.ok, bad).toBe(false);
      if (!parsed.ok) expect(parsed.error).toMatch(/MAC|DUID/);
    }
  });
});
