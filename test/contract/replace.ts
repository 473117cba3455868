import { describe, expect, it } from 'vitest';
import type { StoreContext } from './describe-store.ts';
import {
  chunksOf,
  expectCode,
  expectFile,
  expectGone,
  expectGoneForGood,
  expectInfoShape,
  expectNothingStored,
  expectPutStillWorks,
  randomBytes,
  streamOf,
} from './helpers.ts';

/** The contract's `replace` tests. */
export function testReplace({ fx }: StoreContext): void {
  describe('replace', () => {
    it('stores the new content under a new, higher key and retires the old key for good', async () => {
      const { store } = fx();
      const neighbour = await store.put({ body: randomBytes(30), contentType: 'n/n' });
      const oldBytes = randomBytes(500);
      const old = await store.put({ body: oldBytes, contentType: 'text/plain' });
      const newBytes = randomBytes(700);
      const info = await store.replace(old.key, { body: newBytes, contentType: 'image/webp' });

      expectInfoShape(info);
      expect(info.key).toBeGreaterThan(old.key);
      expect(info).toMatchObject({ size: 700, contentType: 'image/webp' });
      await expectFile(store, info.key, newBytes, 'image/webp', info);

      await expectGoneForGood(store, old.key);
      // The refused calls on the old key changed nothing.
      await expectFile(store, info.key, newBytes, 'image/webp', info);
      expect(await store.head(neighbour.key)).toEqual(neighbour);
    });

    it('takes a stream body and a zero-byte body', async () => {
      const { store } = fx();
      const a = await store.put({ body: randomBytes(50) });
      const streamed = randomBytes(20_000);
      const b = await store.replace(a.key, {
        body: streamOf(chunksOf(streamed, 999), { slow: true }),
        contentType: 'x/streamed',
        length: streamed.byteLength,
      });
      await expectFile(store, b.key, streamed, 'x/streamed', b);
      const c = await store.replace(b.key, { body: null, contentType: 'x/empty' });
      expect(c.key).toBeGreaterThan(b.key);
      await expectFile(store, c.key, new Uint8Array(0), 'x/empty', c);
      await expectGone(store, a.key);
      await expectGone(store, b.key);
    });

    it('of a missing, deleted or replaced key is not_found and stores nothing', async () => {
      const { store } = fx();
      const deleted = await store.put({ body: randomBytes(10) });
      await store.delete(deleted.key);
      const replaced = await store.put({ body: randomBytes(10) });
      const current = await store.replace(replaced.key, { body: randomBytes(11) });
      const before = await store.status();
      const missing = [before.nextKey, deleted.key, replaced.key];
      for (const key of missing) {
        await expectCode(store.replace(key, { body: randomBytes(40) }), 'not_found');
        await expectCode(store.replace(key, { body: streamOf([randomBytes(40)]) }), 'not_found');
      }
      await expectNothingStored(store, before);
      expect(await store.head(current.key)).toEqual(current);
      await expectPutStillWorks(store, before);
    });

    it('whose body is refused leaves the old file as it was and stores nothing', async () => {
      const { store } = fx();
      const oldBytes = randomBytes(100);
      const old = await store.put({ body: oldBytes, contentType: 'o/o' });
      const before = await store.status();
      const body = randomBytes(1000);

      await expectCode(store.replace(old.key, { body, limit: 999 }), 'too_large');
      await expectCode(
        store.replace(old.key, { body: streamOf(chunksOf(body, 100)), limit: 999 }),
        'too_large',
      );
      await expectCode(store.replace(old.key, { body, length: 1001 }), 'bad_request');
      await expectCode(
        store.replace(old.key, {
          body: streamOf(chunksOf(body, 100), { failWith: new Error('connection reset') }),
        }),
        'bad_request',
      );

      await expectNothingStored(store, before);
      await expectFile(store, old.key, oldBytes, 'o/o', old);
      const info = await store.replace(old.key, { body, contentType: 'n/n' });
      await expectFile(store, info.key, body, 'n/n', info);
      await expectGone(store, old.key);
    });
  });
}
