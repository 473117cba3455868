import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_CONTENT_TYPE, type FileInfo } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  expectBytes,
  expectCode,
  expectFile,
  expectGoneForGood,
  expectNothingStored,
  MiB,
  randomBytes,
  readAll,
  streamOf,
} from './helpers.ts';

/** The contract's `cookies` tests. */
export function testCookies({ fx }: StoreContext): void {
  describe('cookies', () => {
    /** Cookies that are not the file's: near misses, another file's, and 32-bit aliases. */
    function wrongCookies(info: FileInfo, other: FileInfo): number[] {
      const candidates = [
        (info.cookie ^ 1) >>> 0,
        (info.cookie ^ 0x8000_0000) >>> 0,
        (info.cookie + 1) % 2 ** 32,
        other.cookie,
        0,
        0xffff_ffff,
        info.cookie + 2 ** 32,
        -1,
      ];
      return [...new Set(candidates)].filter((cookie) => cookie !== info.cookie);
    }

    it('draws cookies from the CSPRNG, not Math.random (whose outputs give its state away)', async () => {
      const { store } = fx();
      const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
      try {
        const cookies = new Set<number>();
        for (let i = 0; i < 20; i++) cookies.add((await store.put({ body: null })).cookie);
        expect(cookies.size).toBe(20);
      } finally {
        random.mockRestore();
      }
    });

    it('with the right cookie, get, head, replace and delete work as without one', async () => {
      const { store } = fx();
      // Small, medium and large enough to be streamed by adapters that stream big files.
      for (const size of [0, 100, 300_000, 5 * MiB]) {
        const bytes = randomBytes(size);
        const info = await store.put({ body: bytes, contentType: 'x/cookie' });
        const read = await store.get(info.key, undefined, info.cookie);
        expect(read.info).toEqual(info);
        expectBytes(await readAll(read.body), bytes, `bytes of ${size}`);
        if (size > 0) {
          const range = { start: Math.floor(size / 3), end: size - 1 };
          const part = await store.get(info.key, range, info.cookie);
          expect(part.info).toEqual(info);
          expectBytes(await readAll(part.body), bytes.subarray(range.start), `range of ${size}`);
        }
        expect(await store.head(info.key, info.cookie)).toEqual(info);
        // No cookie still works: the cookie is an extra check, never a requirement of the port.
        await expectFile(store, info.key, bytes, 'x/cookie', info);

        const newBytes = randomBytes(size + 1);
        const replaced = await store.replace(info.key, { body: newBytes }, info.cookie);
        expect(replaced.key).toBeGreaterThan(info.key);
        await expectGoneForGood(store, info.key);
        await expectCode(store.get(info.key, undefined, info.cookie), 'not_found');
        expect(await store.head(replaced.key, replaced.cookie)).toEqual(replaced);
        await expectFile(store, replaced.key, newBytes, DEFAULT_CONTENT_TYPE, replaced);

        await expect(store.delete(replaced.key, replaced.cookie)).resolves.toBeUndefined();
        await expectGoneForGood(store, replaced.key);
        await expectCode(store.head(replaced.key, replaced.cookie), 'not_found');
        await expectCode(store.delete(replaced.key, replaced.cookie), 'not_found');
      }
    });

    it('a wrong cookie is not_found for get, head, replace and delete, and changes nothing', async () => {
      const { store } = fx();
      const other = await store.put({ body: randomBytes(10) });
      const files: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
      for (const size of [0, 1000, 5 * MiB]) {
        const bytes = randomBytes(size);
        files.push({ info: await store.put({ body: bytes, contentType: 'x/kept' }), bytes });
      }
      const before = await store.status();
      for (const { info } of files) {
        for (const wrong of wrongCookies(info, other)) {
          await expectCode(store.get(info.key, undefined, wrong), 'not_found');
          if (info.size > 0) {
            await expectCode(store.get(info.key, { start: 0, end: 0 }, wrong), 'not_found');
          }
          await expectCode(store.head(info.key, wrong), 'not_found');
          await expectCode(store.replace(info.key, { body: randomBytes(20) }, wrong), 'not_found');
          await expectCode(
            store.replace(info.key, { body: streamOf([randomBytes(20)]) }, wrong),
            'not_found',
          );
          await expectCode(store.delete(info.key, wrong), 'not_found');
        }
      }
      await expectNothingStored(store, before);
      for (const { info, bytes } of files) {
        await expectFile(store, info.key, bytes, 'x/kept', info);
        expect(await store.head(info.key, info.cookie)).toEqual(info);
      }
      expect(await store.head(other.key, other.cookie)).toEqual(other);
    });

    it('a cookie on a key that was never handed out is not_found', async () => {
      const { store } = fx();
      const info = await store.put({ body: randomBytes(10) });
      const { nextKey } = await store.status();
      await expectCode(store.get(nextKey, undefined, info.cookie), 'not_found');
      await expectCode(store.head(nextKey, info.cookie), 'not_found');
      await expectCode(store.delete(nextKey, info.cookie), 'not_found');
      await expectCode(store.replace(nextKey, { body: randomBytes(3) }, info.cookie), 'not_found');
    });
  });
}
