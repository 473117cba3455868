import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  chunksOf,
  endlessStream,
  expectCode,
  expectFile,
  expectNothingStored,
  expectPutStillWorks,
  MiB,
  probeStream,
  randomBytes,
  streamOf,
} from './helpers.ts';

/** The contract's `limits and declared length` tests. */
export function testLimits({ fx }: StoreContext): void {
  describe('limits and declared length', () => {
    it('a Uint8Array body over the limit is too_large and stores nothing', async () => {
      const { store } = fx();
      await store.put({ body: randomBytes(10) });
      const before = await store.status();
      await expectCode(store.put({ body: randomBytes(1001), limit: 1000 }), 'too_large');
      await expectCode(store.put({ body: Uint8Array.of(1), limit: 0 }), 'too_large');
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });

    it('a stream body over the limit is too_large and stores nothing', async () => {
      const { store } = fx();
      await store.put({ body: randomBytes(10) });
      const before = await store.status();
      const bytes = randomBytes(64 * 1024);
      await expectCode(
        store.put({ body: streamOf(chunksOf(bytes, 1024)), limit: 64 * 1024 - 1 }),
        'too_large',
      );
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });

    it('a body exactly at the limit is accepted', async () => {
      const { store } = fx();
      const bytes = randomBytes(4096);
      const a = await store.put({ body: bytes, limit: 4096 });
      const b = await store.put({ body: streamOf(chunksOf(bytes, 1000)), limit: 4096 });
      const c = await store.put({ body: null, limit: 0 });
      await expectFile(store, a.key, bytes, DEFAULT_CONTENT_TYPE, a);
      await expectFile(store, b.key, bytes, DEFAULT_CONTENT_TYPE, b);
      await expectFile(store, c.key, new Uint8Array(0), DEFAULT_CONTENT_TYPE, c);
    });

    it('an endless stream is cut off at the limit, not read to its end', async () => {
      const { store } = fx();
      const before = await store.status();
      const limit = MiB;
      const endless = endlessStream(16 * 1024, 16 * limit);
      await expectCode(store.put({ body: endless.stream, limit }), 'too_large');
      expect(endless.bytesOut).toBeGreaterThan(limit);
      expect(endless.bytesOut).toBeLessThan(4 * limit);
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });

    it('a declared length over the limit is too_large before any byte is read', async () => {
      const { store } = fx();
      const before = await store.status();
      const probe = probeStream(chunksOf(randomBytes(2000), 100));
      await expectCode(store.put({ body: probe.stream, length: 2000, limit: 1000 }), 'too_large');
      expect(probe.pulls).toBe(0);
      await expectCode(
        store.put({ body: randomBytes(100), length: 1001, limit: 1000 }),
        'too_large',
      );
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });

    it('a body over the limit but under its declared length is refused and stores nothing', async () => {
      const { store } = fx();
      const before = await store.status();
      const bytes = randomBytes(3000);
      await expectCode(
        store.put({ body: streamOf(chunksOf(bytes, 500)), length: 900, limit: 1000 }),
        'too_large',
        'bad_request',
      );
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });

    it('a declared length that matches the body is accepted', async () => {
      const { store } = fx();
      const bytes = randomBytes(5000);
      const a = await store.put({ body: bytes, length: 5000 });
      const b = await store.put({
        body: streamOf(chunksOf(bytes, 333)),
        length: 5000,
        limit: 5000,
      });
      const c = await store.put({ body: null, length: 0 });
      await expectFile(store, a.key, bytes, DEFAULT_CONTENT_TYPE, a);
      await expectFile(store, b.key, bytes, DEFAULT_CONTENT_TYPE, b);
      await expectFile(store, c.key, new Uint8Array(0), DEFAULT_CONTENT_TYPE, c);
    });

    it('a body longer than its declared length is bad_request and stores nothing', async () => {
      const { store } = fx();
      await store.put({ body: randomBytes(10) });
      const before = await store.status();
      const bytes = randomBytes(5000);
      await expectCode(store.put({ body: bytes, length: 4999 }), 'bad_request');
      await expectCode(
        store.put({ body: streamOf(chunksOf(bytes, 1000)), length: 4999 }),
        'bad_request',
      );
      await expectCode(store.put({ body: Uint8Array.of(1), length: 0 }), 'bad_request');
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });

    it('a body shorter than its declared length (it ended early) is bad_request and stores nothing', async () => {
      const { store } = fx();
      await store.put({ body: randomBytes(10) });
      const before = await store.status();
      const bytes = randomBytes(5000);
      await expectCode(store.put({ body: bytes, length: 5001 }), 'bad_request');
      await expectCode(
        store.put({ body: streamOf(chunksOf(bytes, 1000)), length: 5001, limit: 10_000 }),
        'bad_request',
      );
      await expectCode(store.put({ body: null, length: 3 }), 'bad_request');
      await expectCode(store.put({ body: streamOf([]), length: 1 }), 'bad_request');
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });

    it('a stream that errors mid-way is bad_request, stores nothing, and later puts still work', async () => {
      const { store } = fx();
      await store.put({ body: randomBytes(10) });
      const before = await store.status();
      const chunks = chunksOf(randomBytes(50_000), 4096);
      await expectCode(
        store.put({ body: streamOf(chunks, { failWith: new Error('socket hang up') }) }),
        'bad_request',
      );
      await expectCode(
        store.put({
          body: streamOf(chunks.slice(0, 3), { failWith: new Error('aborted'), slow: true }),
          length: 50_000,
          limit: 100_000,
          contentType: 'x/aborted',
        }),
        'bad_request',
      );
      await expectCode(
        store.put({ body: streamOf([], { failWith: new Error('before the first byte') }) }),
        'bad_request',
      );
      await expectNothingStored(store, before);
      await expectPutStillWorks(store, before);
    });
  });
}
