import { describe, expect, it } from 'vitest';
import type { FileInfo } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  chunksOf,
  expectBytes,
  expectExactlyOneWins,
  expectFile,
  expectGone,
  expectInfoShape,
  expectStatusConsistent,
  randomBytes,
  readAll,
  streamOf,
} from './helpers.ts';

/** The contract's `concurrency` tests. */
export function testConcurrency({ fx }: StoreContext): void {
  describe('concurrency', () => {
    it('1,000 concurrent puts get 1,000 distinct keys, each with its own bytes', async () => {
      const { store } = fx();
      const first = await store.put({ body: randomBytes(10) });
      const bodies = Array.from({ length: 1000 }, (_, i) =>
        randomBytes(i % 10 === 0 ? 0 : 1 + ((i * 37) % 2000)),
      );
      const infos = await Promise.all(
        bodies.map((bytes, i) =>
          store.put({
            // Half arrive as slow streams, so uploads interleave.
            body: i % 2 === 0 ? bytes : streamOf(chunksOf(bytes, 256), { slow: true }),
            contentType: `application/x-file-${i}`,
          }),
        ),
      );

      expect(new Set(infos.map((info) => info.key)).size).toBe(1000);
      for (const [i, info] of infos.entries()) {
        const bytes = bodies[i] ?? expect.fail();
        expectInfoShape(info);
        expect(info.key).toBeGreaterThan(first.key);
        expect(info.size).toBe(bytes.byteLength);
        await expectFile(store, info.key, bytes, `application/x-file-${i}`, info);
      }
      const status = await store.status();
      expect(status.liveNeedles).toBe(1001);
      expect(status.nextKey).toBeGreaterThan(Math.max(...infos.map((info) => info.key)));
    });

    it('two concurrent deletes of one key: exactly one succeeds, the other is not_found', async () => {
      const { store } = fx();
      const info = await store.put({ body: randomBytes(10) });
      const results = await Promise.allSettled([store.delete(info.key), store.delete(info.key)]);
      expectExactlyOneWins(results);
      expect(await store.status()).toMatchObject({ liveNeedles: 0, deletedNeedles: 1 });
      await expectGone(store, info.key);
    });

    it('two concurrent replaces of one key: exactly one succeeds, the other stores nothing', async () => {
      const { store } = fx();
      const old = await store.put({ body: randomBytes(10) });
      const bodies = [randomBytes(3000), randomBytes(3001)];
      const results = await Promise.allSettled(
        bodies.map((bytes, i) =>
          store.replace(old.key, {
            body: streamOf(chunksOf(bytes, 500), { slow: true }),
            contentType: `x/replace-${i}`,
          }),
        ),
      );
      const winner = expectExactlyOneWins(results);
      const result = results[winner];
      if (result?.status !== 'fulfilled') return expect.fail('no winner');
      await expectFile(
        store,
        result.value.key,
        bodies[winner] ?? expect.fail(),
        `x/replace-${winner}`,
        result.value,
      );
      await expectGone(store, old.key);
      expect(await store.status()).toMatchObject({ liveNeedles: 1, deletedNeedles: 1 });
    });

    it('a concurrent delete and replace of one key: exactly one succeeds', async () => {
      const { store } = fx();
      const old = await store.put({ body: randomBytes(10) });
      const results = await Promise.allSettled([
        store.replace(old.key, { body: streamOf([randomBytes(100)], { slow: true }) }),
        store.delete(old.key),
      ]);
      const winner = expectExactlyOneWins(results);
      await expectGone(store, old.key);
      expect(await store.status()).toMatchObject({
        liveNeedles: winner === 0 ? 1 : 0,
        deletedNeedles: 1,
      });
    });

    it('concurrent puts, deletes, replaces and reads leave exactly the expected files', async () => {
      const { store } = fx();
      const originals: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
      for (let i = 0; i < 99; i++) {
        const bytes = randomBytes(i * 13);
        originals.push({
          info: await store.put({ body: bytes, contentType: `x/old-${i}` }),
          bytes,
        });
      }
      const toDelete = originals.slice(0, 33);
      const toReplace = originals.slice(33, 66);
      const toRead = originals.slice(66);
      const newBodies = Array.from({ length: 50 }, (_, i) => randomBytes(i * 17));
      const replacementBodies = toReplace.map((_, i) => randomBytes(i * 11));

      const [, replaced, reads, added] = await Promise.all([
        Promise.all(toDelete.map(({ info }) => store.delete(info.key))),
        Promise.all(
          toReplace.map(({ info }, i) =>
            store.replace(info.key, {
              body: streamOf(chunksOf(replacementBodies[i] ?? expect.fail(), 64), { slow: true }),
              contentType: `x/new-${i}`,
            }),
          ),
        ),
        Promise.all(toRead.map(({ info }) => store.get(info.key))),
        Promise.all(
          newBodies.map((bytes, i) =>
            store.put({
              body: streamOf(chunksOf(bytes, 100), { slow: true }),
              contentType: `x/add-${i}`,
            }),
          ),
        ),
      ]);

      for (const { info } of [...toDelete, ...toReplace]) await expectGone(store, info.key);
      for (const [i, info] of replaced.entries()) {
        await expectFile(
          store,
          info.key,
          replacementBodies[i] ?? expect.fail(),
          `x/new-${i}`,
          info,
        );
      }
      for (const [i, read] of reads.entries()) {
        const { info, bytes } = toRead[i] ?? expect.fail();
        expect(read.info).toEqual(info);
        expectBytes(await readAll(read.body), bytes);
      }
      for (const [i, info] of added.entries()) {
        await expectFile(store, info.key, newBodies[i] ?? expect.fail(), `x/add-${i}`, info);
      }
      const keys = [...replaced, ...added].map((info) => info.key);
      expect(new Set(keys).size).toBe(keys.length);
      expect(Math.min(...keys)).toBeGreaterThan(Math.max(...originals.map(({ info }) => info.key)));
      const status = await store.status();
      expectStatusConsistent(status);
      expect(status).toMatchObject({ liveNeedles: 99 - 33 + 50, deletedNeedles: 33 + 33 });
    });
  });
}
