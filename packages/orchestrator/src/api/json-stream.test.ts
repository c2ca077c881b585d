import { describe, expect, it } from 'vitest';
import { jsonListStream } from './json-stream.js';

async function text(stream: ReadableStream<Uint8Array>): Promise<{ text: string; chunks: number }> {
  let out = '';
  let chunks = 0;
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    chunks++;
    out += decoder.decode(chunk, { stream: true });
  }
  return { text: out + decoder.decode(), chunks };
}

describe('jsonListStream', () => {
  it.each([0, 1, 2, 3, 4, 7, 9])('writes what JSON.stringify writes, %i items in chunks of 3', async (n) => {
    const items = Array.from({ length: n }, (_, i) => ({ id: `c${i}`, name: i % 2 ? null : 'ü "quoted"' }));
    const view = (item: (typeof items)[number]) => ({ ...item, extra: undefined, n: item.id.length });
    const streamed = await text(jsonListStream('clients', items, view, { next: null }, 3));
    expect(streamed.text).toBe(JSON.stringify({ clients: items.map(view), next: null }));
    expect(streamed.chunks).toBe(Math.max(1, Math.ceil(n / 3)));
  });

  it('writes the list alone without other keys, and null for an item without a JSON form', async () => {
    expect((await text(jsonListStream('xs', [1, undefined, 3], (x) => x))).text).toBe('{"xs":[1,null,3]}');
  });
});
