import { describe, expect, it } from 'vitest';
import { failedFigure, figure, verdict } from './stats.js';

describe('bench verdict (the exit status of npm run bench)', () => {
  const line = (name: string, value: number, target: string, pass: boolean | null) => figure({ name, metric: 'events/s', value, floor: null, target, pass });

  it('is ok when every target is met; context lines (pass null) never fail a run', () => {
    expect(verdict([line('ingest', 3500, '>= 3000/s', true), line('context', 1, 'report', null)])).toEqual({ ok: true, missed: [] });
    expect(verdict([])).toEqual({ ok: true, missed: [] });
  });

  it('names each missed target with its figure and target', () => {
    const result = verdict([line('ingest', 2412, '>= 3000/s', false), line('hook', 11.4, '<= 3x floor', true), line('rss', 90.2, '<= 80 MB', false)]);
    expect(result.ok).toBe(false);
    expect(result.missed).toEqual(['ingest events/s: 2412 (target >= 3000/s)', 'rss events/s: 90.2 (target <= 80 MB)']);
  });

  it('fails a figure that could not be measured, and says why', () => {
    const result = verdict([failedFigure('burst', '<= 1.3x floor, none lost', new Error('dnsmasq did not start'))]);
    expect(result).toEqual({ ok: false, missed: ['burst error: n/a (target <= 1.3x floor, none lost) not measured: dnsmasq did not start'] });
  });
});
