/**
 * Client ids under a key (an address, a device), from a Map: one id is kept
 * as itself and several as an array, since nearly every key has one (a Set
 * for each took 160 bytes more a client). Ids under a key are few: the array
 * is copied on change.
 */
export class IdIndex {
  #map = new Map<string, string | string[]>();

  add(key: string, id: string): void {
    const ids = this.#map.get(key);
    if (ids === undefined) this.#map.set(key, id);
    else if (typeof ids === 'string') {
      if (ids !== id) this.#map.set(key, [ids, id]);
    } else if (!ids.includes(id)) this.#map.set(key, [...ids, id]);
  }

  remove(key: string, id: string): void {
    const ids = this.#map.get(key);
    if (ids === undefined) return;
    const rest = typeof ids === 'string' ? (ids === id ? [] : [ids]) : ids.filter((other) => other !== id);
    if (rest.length === 0) this.#map.delete(key);
    else this.#map.set(key, rest.length === 1 ? rest[0]! : rest);
  }

  get(key: string): string[] {
    const ids = this.#map.get(key);
    return ids === undefined ? [] : typeof ids === 'string' ? [ids] : [...ids];
  }

  get size(): number {
    return this.#map.size;
  }

  /** Rebuild the map at the size it has now (see SyncMemoryStore's compactMemory). */
  compact(): void {
    this.#map = new Map(this.#map);
  }
}
