import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE, type FileInfo } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  chunksOf,
  concatBytes,
  expectBytes,
  expectFile,
  expectInfoShape,
  randomBytes,
  readAll,
  streamOf,
} from './helpers.ts';

/** The contract's `put, get and head` tests. */
export function testPutGetHead({ fx }: StoreContext): void {
  describe('put, get and head', () => {
    it('put returns the file info; get returns exactly the bytes and that info; head agrees', async () => {
      const { store } = fx();
      const bytes = randomBytes(1000);
      const info = await store.put({ body: bytes, contentType: 'image/png' });
      expectInfoShape(info);
      expect(info).toMatchObject({ size: 1000, contentType: 'image/png' });

      const read = await store.get(info.key);
      expect(read.info).toEqual(info);
      expectBytes(await readAll(read.body), bytes);
      expect(await store.head(info.key)).toEqual(info);
    });

    it('files are independent: each key reads back its own bytes, in any order', async () => {
      const { store } = fx();
      const sizes = [1, 7, 8, 9, 4095, 4096, 4097, 100_000];
      const files: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
      for (const size of sizes) {
        const bytes = randomBytes(size);
        files.push({
          info: await store.put({ body: bytes, contentType: `x/size-${size}` }),
          bytes,
        });
      }
      for (const { info, bytes } of files.reverse()) {
        await expectFile(store, info.key, bytes, info.contentType, info);
      }
    });

    it('concurrent reads of one file all get the same bytes and info', async () => {
      const { store } = fx();
      const bytes = randomBytes(300_000);
      const info = await store.put({ body: bytes, contentType: 'application/pdf' });
      const reads = await Promise.all(Array.from({ length: 20 }, () => store.get(info.key)));
      for (const read of reads) {
        expect(read.info).toEqual(info);
        expectBytes(await readAll(read.body), bytes);
      }
    });

    it('the stored bytes do not change when the caller reuses its buffers', async () => {
      const { store } = fx();
      const bytes = randomBytes(2048);
      const original = bytes.slice();
      const a = await store.put({ body: bytes });
      bytes.fill(0);

      const chunks = chunksOf(randomBytes(4096), 512);
      const sent = concatBytes(chunks);
      const b = await store.put({ body: streamOf(chunks) });
      for (const chunk of chunks) chunk.fill(7);

      await expectFile(store, a.key, original, DEFAULT_CONTENT_TYPE);
      await expectFile(store, b.key, sent, DEFAULT_CONTENT_TYPE);
    });

    it('changing what put returns, or trying to change the info of get and head, does not change the stored file', async () => {
      const { store } = fx();
      const bytes = randomBytes(100);
      const info = await store.put({ body: bytes, contentType: 'text/plain' });
      const original = { ...info };
      Object.assign(info, { size: 1, contentType: 'x/changed', etag: '"changed"' });

      const read = await store.get(original.key);
      expect(read.info).toEqual(original);
      // What get and head answer is the store's, read-only (storage/types.ts: FileRead); a store
      // may freeze the info, so that a write to it throws rather than changing anything.
      const tryChange = (target: FileInfo, change: Partial<FileInfo>) => {
        try {
          Object.assign(target, change);
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError);
        }
      };
      tryChange(read.info, { size: 2, contentType: 'x/changed-too' });
      tryChange(await store.head(original.key), { size: 3, offset: 12345 });

      await expectFile(store, original.key, bytes, 'text/plain', original);
    });
  });
}
