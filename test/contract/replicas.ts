import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_KEY, type PutInput, type ReplicaWriter } from '../../storage/index.ts';
import type { StoreContext, StoreFixture } from './describe-store.ts';
import {
  chunksOf,
  expectBytes,
  expectCode,
  randomBytes,
  readAll,
  streamOf,
  utf8,
} from './helpers.ts';

const MiB = 1024 * 1024;

/**
 * The contract of the replica capability (`store.capabilities.replicas`): a file stored under the
 * key and cookie the caller chose, idempotent for a retry of the same file, `conflict` for another
 * file under the same key. Its tests run only for adapters that offer it, and are skipped, saying
 * so, for the others.
 */
export function testReplicas({ fx, closeAndReopen }: StoreContext): void {
  describe('replica writes (capabilities.replicas)', () => {
    let fixture: StoreFixture;

    beforeEach(({ skip }) => {
      fixture = fx();
      if (!fixture.store.capabilities.replicas) skip('the adapter offers no replica writes');
    });

    function replicas(): ReplicaWriter {
      return fixture.store.capabilities.replicas as ReplicaWriter;
    }

    const file = (bytes: Uint8Array, contentType = 'image/jpeg'): PutInput => ({
      body: bytes,
      length: bytes.byteLength,
      contentType,
    });

    it('stores the file under the key and cookie given, and reads it back by both', async () => {
      const { store } = fixture;
      const bytes = randomBytes(5000);
      const info = await replicas().putReplica(1_000_003, 0xdeadbeef, file(bytes));
      expect(info).toMatchObject({
        key: 1_000_003,
        cookie: 0xdeadbeef,
        size: 5000,
        contentType: 'image/jpeg',
      });
      const read = await store.get(1_000_003, undefined, 0xdeadbeef);
      expectBytes(await readAll(read.body), bytes);
      expect(read.info).toEqual(info);
      expect(await store.head(1_000_003)).toEqual(info);
      await expectCode(store.get(1_000_003, undefined, 0xdeadbeee), 'not_found');
    });

    it('takes keys in any order, and put hands out keys above every one of them', async () => {
      const { store } = fixture;
      const own = await store.put(file(utf8('own')));
      await replicas().putReplica(own.key + 500, 1, file(utf8('far')));
      await replicas().putReplica(own.key + 10, 2, file(utf8('near')));
      const next = await store.put(file(utf8('after')));
      expect(next.key).toBeGreaterThan(own.key + 500);
      expect((await store.status()).nextKey).toBe(next.key + 1);
      expectBytes(await readAll((await store.get(own.key + 10)).body), utf8('near'));
    });

    it('lists live keys above a key, increasing, a page at a time', async () => {
      const { store } = fixture;
      for (const key of [900, 30, 5000, 31, 7]) {
        await replicas().putReplica(key, key, file(utf8(`file ${key}`)));
      }
      await store.delete(31);
      const replaced = await store.replace(900, file(utf8('new')));
      const all = [7, 30, 5000, replaced.key];
      expect(await replicas().listKeys(0, 100)).toEqual(all);
      expect(await replicas().listKeys(7, 2)).toEqual([30, 5000]);
      expect(await replicas().listKeys(30, 1)).toEqual([5000]);
      expect(await replicas().listKeys(replaced.key, 100)).toEqual([]);
      expect(await replicas().listKeys(0, 0)).toEqual([]);
    });

    it('answers a retry of the same file with the stored file, storing nothing twice', async () => {
      const { store } = fixture;
      const bytes = randomBytes(3000);
      const first = await replicas().putReplica(77, 42, file(bytes, 'text/plain'));
      const before = await store.status();
      const again = await replicas().putReplica(77, 42, file(bytes.slice(), 'text/plain'));
      expect(again).toEqual(first);
      expect(await store.status()).toEqual(before);
    });

    it('answers concurrent retries of the same file alike, and stores it once', async () => {
      const { store } = fixture;
      const bytes = randomBytes(2000);
      const [a, b] = await Promise.all([
        replicas().putReplica(9, 7, file(bytes)),
        replicas().putReplica(9, 7, file(bytes.slice())),
      ]);
      expect(a).toEqual(b);
      expect((await store.status()).liveNeedles).toBe(1);
    });

    it.each([
      ['other bytes', 5, randomBytes(100), 'image/jpeg'],
      ['other bytes of the same length', 5, new Uint8Array(100), 'image/jpeg'],
      ['another cookie', 6, undefined, 'image/jpeg'],
      ['another content type', 5, undefined, 'image/png'],
    ] as const)(
      'refuses the same key with %s: conflict, and the file stays',
      async (_, cookie, other, type) => {
        const { store } = fixture;
        const bytes = randomBytes(100);
        const info = await replicas().putReplica(31, 5, file(bytes));
        await expectCode(replicas().putReplica(31, cookie, file(other ?? bytes, type)), 'conflict');
        expect(await store.head(31)).toEqual(info);
        expectBytes(await readAll((await store.get(31)).body), bytes);
        expect((await store.status()).liveNeedles).toBe(1);
      },
    );

    it('streams a large body of declared length, byte-exact', async () => {
      const bytes = randomBytes(3 * MiB + 17);
      const input: PutInput = {
        body: streamOf(chunksOf(bytes, 64 * 1024)),
        length: bytes.byteLength,
        limit: 4 * MiB,
      };
      const info = await replicas().putReplica(500, 0xffff_ffff, input);
      expect(info.size).toBe(bytes.byteLength);
      expectBytes(await readAll((await fixture.store.get(500)).body), bytes);
    });

    it.each([0, -1, 1.5, MAX_KEY + 1, Number.NaN])(
      'refuses the key %s with bad_key',
      async (key) => {
        await expectCode(replicas().putReplica(key, 1, file(utf8('x'))), 'bad_key');
        expect((await fixture.store.status()).liveNeedles).toBe(0);
      },
    );

    it.each([-1, 2 ** 32, 0.5])('refuses the cookie %s with bad_request', async (cookie) => {
      await expectCode(replicas().putReplica(3, cookie, file(utf8('x'))), 'bad_request');
      expect((await fixture.store.status()).liveNeedles).toBe(0);
    });

    it('enforces the limit and the declared length, storing nothing', async () => {
      const bytes = randomBytes(1000);
      await expectCode(
        replicas().putReplica(4, 1, { body: streamOf(chunksOf(bytes, 100)), limit: 999 }),
        'too_large',
      );
      await expectCode(replicas().putReplica(4, 1, { body: bytes, length: 1001 }), 'bad_request');
      // Nothing of the refused attempts holds key 4: the file that fits goes in without conflict.
      await replicas().putReplica(4, 1, file(utf8('fits')));
      expect((await fixture.store.status()).liveNeedles).toBe(1);
    });

    it('a replica file is deleted as any file is', async () => {
      const { store } = fixture;
      await replicas().putReplica(12, 3, file(utf8('bye')));
      await store.delete(12, 3);
      await expectCode(store.get(12), 'not_found');
    });

    it('survives a close and reopen with its key and cookie, and put stays above it', async ({
      skip,
    }) => {
      if (!fixture.reopen) skip('the adapter keeps nothing across a reopen');
      const bytes = randomBytes(800);
      const info = await replicas().putReplica(4242, 0x0badf00d, file(bytes));
      const store = await closeAndReopen(fixture.store);
      expect(await store.head(4242, 0x0badf00d)).toEqual(info);
      expectBytes(await readAll((await store.get(4242)).body), bytes);
      expect((await store.put(file(utf8('next')))).key).toBeGreaterThan(4242);
    });
  });
}
