import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE, type FileInfo, type Key, MAX_KEY } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  expectCode,
  expectFile,
  expectInfoShape,
  expectNothingStored,
  randomBytes,
} from './helpers.ts';

/** The contract's `keys` tests. */
export function testKeys({ fx }: StoreContext): void {
  describe('keys', () => {
    it('are safe integers from 1 up, strictly increasing and unique', async () => {
      const { store } = fx();
      const keys: Key[] = [];
      for (let i = 0; i < 50; i++) {
        const info = await store.put({ body: randomBytes(i) });
        expectInfoShape(info);
        if (keys.length > 0) expect(info.key).toBeGreaterThan(Math.max(...keys));
        keys.push(info.key);
      }
      expect(new Set(keys).size).toBe(keys.length);
    });

    it('the key put hands out is the nextKey status announced', async () => {
      const { store } = fx();
      for (let i = 0; i < 3; i++) {
        const before = await store.status();
        const info = await store.put({ body: randomBytes(10) });
        expect(info.key).toBe(before.nextKey);
        expect((await store.status()).nextKey).toBeGreaterThan(info.key);
      }
    });

    it('are never reused after a delete or a replace', async () => {
      const { store } = fx();
      const a = await store.put({ body: randomBytes(10) });
      const b = await store.put({ body: randomBytes(10) });
      await store.delete(b.key); // the highest key so far
      const c = await store.put({ body: randomBytes(10) });
      expect(c.key).toBeGreaterThan(b.key);
      const d = await store.replace(c.key, { body: randomBytes(10) });
      expect(d.key).toBeGreaterThan(c.key);
      await store.delete(d.key);
      await store.delete(a.key);
      const e = await store.put({ body: randomBytes(10) });
      expect(e.key).toBeGreaterThan(d.key);
      expect((await store.status()).nextKey).toBeGreaterThan(e.key);
    });

    it('a valid key that was never handed out is not_found', async () => {
      const { store } = fx();
      const info = await store.put({ body: randomBytes(10) });
      const before = await store.status();
      for (const key of [before.nextKey, before.nextKey + 1, info.key + 2 ** 32, MAX_KEY]) {
        await expectCode(store.get(key), 'not_found');
        await expectCode(store.get(key, { start: 0, end: 0 }), 'not_found');
        await expectCode(store.head(key), 'not_found');
        await expectCode(store.delete(key), 'not_found');
        await expectCode(store.replace(key, { body: randomBytes(3) }), 'not_found');
      }
      await expectNothingStored(store, before);
    });

    it('a number that is not a valid key is refused and never reaches another file', async () => {
      const { store } = fx();
      const files: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
      for (let i = 0; i < 3; i++) {
        const bytes = randomBytes(20 + i);
        files.push({ info: await store.put({ body: bytes }), bytes });
      }
      const k = files[1]?.info.key ?? expect.fail('no file');
      const before = await store.status();
      const notKeys = [
        0,
        -1,
        -k,
        k + 0.5,
        k - 0.5,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        MAX_KEY + 1,
        2 ** 64 + k,
      ];
      for (const key of notKeys) {
        await expectCode(store.get(key), 'bad_key', 'not_found');
        await expectCode(store.head(key), 'bad_key', 'not_found');
        await expectCode(store.delete(key), 'bad_key', 'not_found');
        await expectCode(store.replace(key, { body: randomBytes(3) }), 'bad_key', 'not_found');
      }
      await expectNothingStored(store, before);
      for (const { info, bytes } of files) {
        await expectFile(store, info.key, bytes, DEFAULT_CONTENT_TYPE, info);
      }
    });
  });
}
