import { describe, expect, it } from 'vitest';
import type { StoreContext } from './describe-store.ts';
import { chunksOf, expectBytes, expectFile, randomBytes, readAll, streamOf } from './helpers.ts';

/** The contract's `range reads` tests. */
export function testRanges({ fx }: StoreContext): void {
  describe('range reads', () => {
    it('return exactly the bytes from start to end, inclusive, with the whole file info', async () => {
      const { store } = fx();
      const bytes = randomBytes(4096);
      const info = await store.put({ body: streamOf(chunksOf(bytes, 100)), contentType: 'a/b' });
      const ranges = [
        { start: 0, end: 0 },
        { start: 0, end: 4095 },
        { start: 4095, end: 4095 },
        { start: 1, end: 4094 },
        { start: 99, end: 100 },
        { start: 100, end: 199 },
        { start: 4000, end: 4095 },
      ];
      for (const range of ranges) {
        const read = await store.get(info.key, range);
        expect(read.info).toEqual(info);
        expectBytes(
          await readAll(read.body),
          bytes.subarray(range.start, range.end + 1),
          `range ${range.start}-${range.end}`,
        );
      }
      // A range read leaves the whole file as it was.
      await expectFile(store, info.key, bytes, 'a/b', info);
    });

    it('work on a one-byte file', async () => {
      const { store } = fx();
      const info = await store.put({ body: Uint8Array.of(0xa5) });
      const read = await store.get(info.key, { start: 0, end: 0 });
      expectBytes(await readAll(read.body), Uint8Array.of(0xa5));
    });
  });
}
