import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { KeyedQueue } from './keyed-queue.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('KeyedQueue', () => {
  it('runs one key in order and keys in parallel up to the limit', async () => {
    const errors: unknown[] = [];
    const queue = new KeyedQueue({ concurrency: 2, onError: (_k, e) => errors.push(e) });
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    const task = (name: string, ms: number) => async () => {
      running++;
      peak = Math.max(peak, running);
      log.push(`start ${name}`);
      await tick(ms);
      log.push(`end ${name}`);
      running--;
    };
    queue.push('a', task('a1', 20));
    queue.push('a', task('a2', 1));
    queue.push('b', task('b1', 5));
    queue.push('c', task('c1', 5));
    queue.push('a', async () => {
      throw new Error('boom');
    });
    queue.push('a', task('a3', 1));
    await queue.idle();
    expect(peak).toBe(2);
    const order = (prefix: string) => log.filter((l) => l.includes(` ${prefix}`));
    expect(order('a')).toEqual(['start a1', 'end a1', 'start a2', 'end a2', 'start a3', 'end a3']);
    expect(log.indexOf('start c1')).toBeGreaterThan(log.indexOf('end b1'));
    expect(errors).toHaveLength(1);
    expect(queue.depth).toBe(0);
  });

  it('runs each task in the async context it was pushed from, not the one that freed its slot', async () => {
    const context = new AsyncLocalStorage<string>();
    const queue = new KeyedQueue({ concurrency: 1, onError: () => undefined });
    const seen: Array<string | undefined> = [];
    const task = (name: string) => async () => {
      seen.push(`${name}:${context.getStore()}`);
      await tick(1);
      seen.push(`${name}:${context.getStore()}`);
    };
    context.run('first', () => queue.push('a', task('a')));
    context.run('second', () => queue.push('b', task('b')));
    queue.push('c', task('c'));
    await queue.idle();
    expect(seen).toEqual(['a:first', 'a:first', 'b:second', 'b:second', 'c:undefined', 'c:undefined']);
  });
});
