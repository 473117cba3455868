import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE, type FileInfo, MAX_KEY } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  expectCode,
  expectFile,
  expectGone,
  expectGoneForGood,
  expectNothingStored,
  randomBytes,
} from './helpers.ts';

/** The contract's `delete` tests. */
export function testDelete({ fx }: StoreContext): void {
  describe('delete', () => {
    it('retires the key: get, head, delete and replace are then not_found; others stay', async () => {
      const { store } = fx();
      const files = [randomBytes(10), randomBytes(0), randomBytes(20)];
      const infos: FileInfo[] = [];
      for (const bytes of files) infos.push(await store.put({ body: bytes }));
      const [first, middle, last] = infos;
      if (!first || !middle || !last) return expect.fail('puts failed');

      await expect(store.delete(middle.key)).resolves.toBeUndefined();
      await expectGoneForGood(store, middle.key);
      await expectFile(store, first.key, files[0] ?? expect.fail(), DEFAULT_CONTENT_TYPE, first);
      await expectFile(store, last.key, files[2] ?? expect.fail(), DEFAULT_CONTENT_TYPE, last);

      await store.delete(first.key);
      await store.delete(last.key);
      await expectGone(store, first.key);
      await expectGone(store, last.key);
    });

    it('of a key never handed out is not_found and changes nothing', async () => {
      const { store } = fx();
      await store.put({ body: randomBytes(10) });
      const before = await store.status();
      await expectCode(store.delete(before.nextKey), 'not_found');
      await expectCode(store.delete(MAX_KEY), 'not_found');
      await expectNothingStored(store, before);
      expect((await store.status()).nextKey).toBe(before.nextKey);
    });
  });
}
