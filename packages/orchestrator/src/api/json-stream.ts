/**
 * `{"<key>":[...items],...rest}` as a stream of chunks of `chunkSize` items,
 * each turned into its view only when its chunk is written. The same bytes as
 * JSON.stringify of the whole, but never the whole at once: a list of 10,000
 * clients was one string of several MB (and as many again in the buffer
 * written), held in V8's large-object space until the next full collection.
 */
export function jsonListStream<T>(
  key: string,
  items: readonly T[],
  view: (item: T) => unknown,
  rest: Record<string, unknown> = {},
  /** Small enough that a chunk (about 0.8 KB a client) stays below V8's large-object size (128 KB) and dies young. */
  chunkSize = 50,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const tail = JSON.stringify(rest).slice(1);
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const start = next;
      const end = Math.min(items.length, start + chunkSize);
      next = end;
      let text = start === 0 ? `{${JSON.stringify(key)}:[` : '';
      for (let i = start; i < end; i++) text += (i === 0 ? '' : ',') + (JSON.stringify(view(items[i]!)) ?? 'null');
      if (end === items.length) {
        text += tail === '}' ? ']}' : `],${tail}`;
        controller.enqueue(encoder.encode(text));
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(text));
    },
  });
}
