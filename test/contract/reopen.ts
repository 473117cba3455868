import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONTENT_TYPE,
  type FileInfo,
  type Key,
  type PutInput,
} from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  chunksOf,
  everyByteValue,
  expectBytes,
  expectCode,
  expectFile,
  expectGone,
  expectGoneForGood,
  expectStatusConsistent,
  MiB,
  randomBytes,
  readAll,
  streamOf,
  utf8,
} from './helpers.ts';

/**
 * The contract's `close and reopen` tests. Each is skipped for an adapter whose fixture has no
 * `reopen` (one that does not persist).
 */
export function testReopen({ fx, closeAndReopen }: StoreContext): void {
  describe('close and reopen', () => {
    it('live files, bytes and content types survive; deleted and replaced keys stay gone', async ({
      skip,
    }) => {
      if (!fx().reopen) skip('the adapter does not persist');
      let store = fx().store;
      const live = new Map<Key, { info: FileInfo; bytes: Uint8Array }>();
      const gone: Key[] = [];
      const add = async (input: PutInput, bytes: Uint8Array): Promise<FileInfo> => {
        const info = await store.put(input);
        live.set(info.key, { info, bytes });
        return info;
      };

      await add({ body: null }, new Uint8Array(0));
      const all = everyByteValue();
      await add({ body: streamOf(chunksOf(all, 1)), contentType: 'application/octet-stream' }, all);
      const big = randomBytes(MiB + 3);
      const bigInfo = await add(
        { body: streamOf(chunksOf(big, 64 * 1024)), contentType: 'video/mp4; codecs="avc1"' },
        big,
      );
      const text = utf8('héllo, haystack\n');
      await add({ body: text, contentType: 'text/plain; charset=utf-8' }, text);

      const deleted = await store.put({ body: randomBytes(100) });
      await store.delete(deleted.key);
      gone.push(deleted.key);

      const old = await store.put({ body: randomBytes(200), contentType: 'o/o' });
      const newBytes = randomBytes(201);
      const replacement = await store.replace(old.key, { body: newBytes, contentType: 'n/n' });
      live.set(replacement.key, { info: replacement, bytes: newBytes });
      gone.push(old.key);

      await expectCode(
        store.put({ body: streamOf(chunksOf(randomBytes(5000), 1000)), limit: 1000 }),
        'too_large',
      );
      // The newest key of all is deleted: the next key must still go above it.
      const newest = await store.put({ body: randomBytes(10) });
      await store.delete(newest.key);
      gone.push(newest.key);

      const before = await store.status();
      const highest = Math.max(...live.keys(), ...gone);
      const closed = store;
      store = await closeAndReopen(store);
      await expectCode(closed.head(bigInfo.key), 'closed');

      const after = await store.status();
      expectStatusConsistent(after);
      expect(after).toMatchObject({
        liveNeedles: before.liveNeedles,
        deletedNeedles: before.deletedNeedles,
        liveBytes: before.liveBytes,
      });
      expect(after.nextKey).toBeGreaterThan(highest);
      for (const [key, { info, bytes }] of live) {
        await expectFile(store, key, bytes, info.contentType, info);
      }
      const range = { start: 65_530, end: 65_540 };
      expectBytes(
        await readAll((await store.get(bigInfo.key, range)).body),
        big.subarray(range.start, range.end + 1),
      );
      for (const key of gone) await expectGoneForGood(store, key);

      const next = await store.put({ body: randomBytes(42), contentType: 'x/after' });
      expect(next.key).toBeGreaterThan(highest);
      expect(next.key).toBe(after.nextKey);
      expect((await store.status()).liveNeedles).toBe(live.size + 1);
    });

    it('keys keep increasing across several reopens, even when the newest file is gone', async ({
      skip,
    }) => {
      if (!fx().reopen) skip('the adapter does not persist');
      let store = fx().store;
      const issued: Key[] = [];
      const kept = new Map<Key, { info: FileInfo; bytes: Uint8Array }>();
      for (let round = 0; round < 3; round++) {
        const bytes = randomBytes(200 + round);
        const info = await store.put({ body: bytes, contentType: `x/round-${round}` });
        if (issued.length > 0) expect(info.key).toBeGreaterThan(Math.max(...issued));
        issued.push(info.key);
        kept.set(info.key, { info, bytes });

        const doomed = await store.put({ body: randomBytes(50) });
        issued.push(doomed.key);
        if (round % 2 === 0) {
          await store.delete(doomed.key);
        } else {
          const replacement = await store.replace(doomed.key, { body: randomBytes(60) });
          issued.push(replacement.key);
          await store.delete(replacement.key);
          await store.sync();
        }

        store = await closeAndReopen(store);
        const status = await store.status();
        expect(status.nextKey).toBeGreaterThan(Math.max(...issued));
        expect(status.liveNeedles).toBe(kept.size);
        for (const [key, file] of kept) {
          await expectFile(store, key, file.bytes, file.info.contentType, file.info);
        }
        for (const key of issued.filter((key) => !kept.has(key))) await expectGone(store, key);
      }
      const last = await store.put({ body: randomBytes(7) });
      expect(last.key).toBeGreaterThan(Math.max(...issued));
    });

    it('an empty store reopens empty', async ({ skip }) => {
      if (!fx().reopen) skip('the adapter does not persist');
      const before = await fx().store.status();
      const store = await closeAndReopen(fx().store);
      const after = await store.status();
      expect(after).toMatchObject({ liveNeedles: 0, deletedNeedles: 0, liveBytes: 0 });
      expect(after.nextKey).toBeGreaterThanOrEqual(before.nextKey);
      const info = await store.put({ body: utf8('first') });
      await expectFile(store, info.key, utf8('first'), DEFAULT_CONTENT_TYPE, info);
    });
  });
}
