import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import { expectFile, randomBytes } from './helpers.ts';

/** The contract's `content types` tests. */
export function testContentTypes({ fx }: StoreContext): void {
  describe('content types', () => {
    const types = [
      'text/plain; charset=utf-8',
      'image/jpeg',
      'application/vnd.api+json',
      'Text/HTML; Charset=ISO-8859-1',
      'application/json;charset=UTF-8',
      'multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW',
      'video/mp4; codecs="avc1.42E01E, mp4a.40.2"',
    ];

    it('are stored exactly as given, parameters and case included', async () => {
      const { store } = fx();
      for (const contentType of types) {
        const bytes = randomBytes(64);
        const info = await store.put({ body: bytes, contentType });
        expect(info.contentType).toBe(contentType);
        await expectFile(store, info.key, bytes, contentType, info);
      }
    });

    it('default to application/octet-stream when none is given, for put and replace', async () => {
      const { store } = fx();
      const a = await store.put({ body: randomBytes(5) });
      const b = await store.put({ body: null });
      expect(a.contentType).toBe(DEFAULT_CONTENT_TYPE);
      expect(b.contentType).toBe(DEFAULT_CONTENT_TYPE);
      expect((await store.head(a.key)).contentType).toBe(DEFAULT_CONTENT_TYPE);
      expect((await store.head(b.key)).contentType).toBe(DEFAULT_CONTENT_TYPE);

      // A replace without a type does not inherit the old one.
      const typed = await store.put({ body: randomBytes(5), contentType: 'image/gif' });
      const replaced = await store.replace(typed.key, { body: randomBytes(6) });
      expect(replaced.contentType).toBe(DEFAULT_CONTENT_TYPE);
      expect((await store.head(replaced.key)).contentType).toBe(DEFAULT_CONTENT_TYPE);
    });
  });
}
