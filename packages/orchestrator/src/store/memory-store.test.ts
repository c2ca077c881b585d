import { describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.js';

describe('MemoryStore address pool', () => {
  it('gives each client one stable address and reuses the lowest freed one', () => {
    const store = new MemoryStore({ prefix: 'fd00:3::/64' });
    expect(store.allocateAddress('a')).toBe('fd00:3::100');
    expect(store.allocateAddress('b')).toBe('fd00:3::101');
    expect(store.allocateAddress('c')).toBe('fd00:3::102');
    expect(store.allocateAddress('a')).toBe('fd00:3::100');
    store.releaseAddress('c');
    store.releaseAddress('a');
    expect(store.allocateAddress('d')).toBe('fd00:3::100');
    expect(store.allocateAddress('e')).toBe('fd00:3::102');
    expect(store.allocateAddress('f')).toBe('fd00:3::103');
  });
});
