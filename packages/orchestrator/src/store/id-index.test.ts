import { describe, expect, it } from 'vitest';
import { IdIndex } from './id-index.js';

describe('IdIndex', () => {
  it('keeps ids under a key once each, in the order they came, and drops a key with none left', () => {
    const index = new IdIndex();
    index.add('k', 'a');
    index.add('k', 'a');
    expect(index.get('k')).toEqual(['a']);
    index.add('k', 'b');
    index.add('k', 'c');
    index.add('k', 'b');
    expect(index.get('k')).toEqual(['a', 'b', 'c']);
    index.remove('k', 'b');
    expect(index.get('k')).toEqual(['a', 'c']);
    index.remove('k', 'x');
    index.remove('other', 'a');
    index.remove('k', 'a');
    expect(index.get('k')).toEqual(['c']);
    index.remove('k', 'c');
    expect(index.get('k')).toEqual([]);
    expect(index.size).toBe(0);
  });

  it('hands out copies, and keeps its ids through a compaction', () => {
    const index = new IdIndex();
    index.add('k', 'a');
    index.add('k', 'b');
    index.get('k').push('z');
    index.add('j', 'c');
    index.compact();
    expect([index.get('k'), index.get('j'), index.size]).toEqual([['a', 'b'], ['c'], 2]);
  });
});
