import { describe, expect, it } from 'vitest';
import { imageRefSchema } from './agent-api.js';

describe('imageRefSchema', () => {
  it('takes a repository with a tag (capitals too, as a kept image has), a registry port or a digest; nothing else', () => {
    for (const ref of ['unionize-client:latest', 'busybox', 'registry.local:5000/team/img:v1.2', 'unionize-kept/0123456789abcdef0123:20260101T000000000Z', `img@sha256:${'a'.repeat(64)}`]) {
      expect(imageRefSchema.safeParse(ref).success, ref).toBe(true);
    }
    for (const ref of ['Upper/img:tag', 'img:tag with space', ':tag', 'img;rm -rf', '-img', `img:${'T'.repeat(129)}`, '']) {
      expect(imageRefSchema.safeParse(ref).success, ref).toBe(false);
    }
  });
});
