import { describe, expect, it } from 'vitest';
import { compareText } from './compare.js';

describe('compareText', () => {
  it('orders by code unit, as < does: ISO timestamps by time, capitals before small letters', () => {
    expect(['b', 'B', 'a', '2026-12-04T10:00:00.000Z', '2026-12-04T09:59:59.999Z', 'a'].sort(compareText)).toEqual([
      '2026-12-04T09:59:59.999Z', '2026-12-04T10:00:00.000Z', 'B', 'a', 'a', 'b',
    ]);
    expect(compareText('x', 'x')).toBe(0);
    expect(compareText('dev-1', 'dev-10')).toBeLessThan(0);
  });
});
