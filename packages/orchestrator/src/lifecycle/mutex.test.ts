import { describe, expect, it } from 'vitest';
import { Mutex } from './mutex.js';

describe('Mutex', () => {
  it('runs sections one at a time, in order, past a failed one', async () => {
    const mutex = new Mutex();
    const seen: string[] = [];
    let inside = 0;
    const section = (name: string, fail = false) => async () => {
      inside++;
      expect(inside).toBe(1);
      seen.push(`${name}:in`);
      for (let i = 0; i < 3; i++) await Promise.resolve();
      seen.push(`${name}:out`);
      inside--;
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([mutex.run(section('a')), mutex.run(section('b', true)), mutex.run(section('c'))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(seen).toEqual(['a:in', 'a:out', 'b:in', 'b:out', 'c:in', 'c:out']);
  });
});
