import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEADER_SIZE } from '../../adapters/volume/needle.ts';
import { CACHE_SIZE_TESTED } from '../../adapters/volume/needle-cache.ts';
import { type ReadPoolStats, readPool } from '../../adapters/volume/read-pool.ts';
import type { VolumeStore } from '../../adapters/volume/volume-store.ts';
import type { FileInfo, FileRead } from '../../storage/index.ts';
import { useVolumeStores } from '../support/volume-stores.ts';

/**
 * The volume store's side of the read pool: which reads lend their buffer (`release`), that a
 * released buffer is read into again, that nothing else (the cache, a failed read) keeps or
 * loses one, and that a caller that never releases always reads right.
 */

const stores = useVolumeStores('haystack-read-pool-');
const KiB = 1024;

function bytesOf(read: FileRead): Buffer {
  expect(read.body).toBeInstanceOf(Uint8Array);
  const body = read.body as Uint8Array;
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** What the process's pool did while `run` ran. */
async function poolDuring<T>(run: () => Promise<T>): Promise<{ result: T; pool: ReadPoolStats }> {
  const before = readPool.stats();
  const result = await run();
  const after = readPool.stats();
  return {
    result,
    pool: {
      leases: after.leases - before.leases,
      reused: after.reused - before.reused,
      released: after.released - before.released,
      dropped: after.dropped - before.dropped,
      freeBytes: after.freeBytes - before.freeBytes,
    },
  };
}

interface Stored {
  bytes: Buffer;
  info: FileInfo;
}

async function putFile(store: VolumeStore, size: number): Promise<Stored> {
  const bytes = randomBytes(size);
  return { bytes, info: await store.put({ body: bytes, contentType: 'image/jpeg' }) };
}

async function putFiles(store: VolumeStore, sizes: number[]): Promise<Stored[]> {
  const files = [];
  for (const size of sizes) files.push(await putFile(store, size));
  return files;
}

describe('whole-file reads from the read pool', () => {
  it('lend mid-size files only, and read the next file into a released buffer', async () => {
    const store = await stores.open();
    const tiny = await putFile(store, 1 * KiB);
    const huge = await putFile(store, 2 * 1024 * KiB);
    const pooled = await putFiles(store, [
      8 * KiB, // its needle is just over 8 KiB: the smallest class
      64 * KiB,
      700 * KiB, // read off the event loop's thread (over 256 KiB), still pooled
    ]);
    expect((await store.get(tiny.info.key)).release).toBeUndefined();
    expect((await store.get(huge.info.key)).release).toBeUndefined();
    for (const file of pooled) {
      const { result: first } = await poolDuring(() => store.get(file.info.key));
      expect(first.release).toBeTypeOf('function');
      expect(bytesOf(first).equals(file.bytes)).toBe(true);
      const backing = (first.body as Uint8Array).buffer;
      first.release?.();
      first.release?.();
      const { result: second, pool } = await poolDuring(() => store.get(file.info.key));
      expect(pool).toMatchObject({ leases: 1, reused: 1 });
      expect((second.body as Uint8Array).buffer).toBe(backing);
      expect(bytesOf(second).equals(file.bytes)).toBe(true);
      second.release?.();
    }
  });

  it('answer every file its own bytes when no caller ever releases', async () => {
    const store = await stores.open();
    const files = await putFiles(
      store,
      Array.from({ length: 24 }, (_, i) => 20 * KiB + i * 997),
    );
    const reads = [];
    for (let round = 0; round < 4; round++) {
      for (const file of files) reads.push({ file, read: await store.get(file.info.key) });
    }
    for (const { file, read } of reads) expect(bytesOf(read).equals(file.bytes)).toBe(true);
  });

  it('lend a range as they lend the whole file', async () => {
    const store = await stores.open();
    const file = await putFile(store, 64 * KiB);
    const part = await store.get(file.info.key, { start: 1000, end: 40_999 });
    expect(part.release).toBeTypeOf('function');
    expect(bytesOf(part).equals(file.bytes.subarray(1000, 41_000))).toBe(true);
    part.release?.();
    const { result: whole, pool } = await poolDuring(() => store.get(file.info.key));
    expect(pool.reused).toBe(1);
    expect(bytesOf(whole).equals(file.bytes)).toBe(true);
    whole.release?.();
  });

  it('read no pooled buffer for a head, and give one back at once when the needle is corrupt', async () => {
    const store = await stores.open();
    const good = await putFile(store, 64 * KiB);
    const bad = await putFile(store, 64 * KiB);
    const { pool: heads } = await poolDuring(() => store.head(good.info.key));
    expect(heads.leases).toBe(0);

    const volume = await open(path.join(stores.dir(), '1.dat'), 'r+');
    try {
      await volume.write(
        Buffer.from([0xff ^ (bad.bytes[500] as number)]),
        0,
        1,
        bad.info.offset + HEADER_SIZE + 10 + 500,
      );
    } finally {
      await volume.close();
    }
    const { result: failed, pool } = await poolDuring(() =>
      store.get(bad.info.key).then(
        () => 'answered',
        (err: { code?: string }) => err.code,
      ),
    );
    expect(failed).toBe('corrupt');
    expect(pool).toMatchObject({ leases: 1, released: 1 });
    // And a cookie that does not match is a read that fails too.
    const { pool: strangers } = await poolDuring(() =>
      store.get(good.info.key, undefined, good.info.cookie ^ 1).catch(() => undefined),
    );
    expect(strangers).toMatchObject({ leases: 1, released: 1 });
  });
});

describe('the read pool with the needle cache on', () => {
  it('never lets the cache keep a pooled buffer: a miss is copied, its buffer given back at once', async () => {
    const store = await stores.open({ cacheSize: CACHE_SIZE_TESTED });
    const cached = await putFile(store, 64 * KiB);
    // A write fills the cache; a store reopened starts empty, so the first read is a miss.
    const reopened = await stores.reopen(store, { cacheSize: CACHE_SIZE_TESTED });
    const { result: miss, pool } = await poolDuring(() => reopened.get(cached.info.key));
    expect(pool).toMatchObject({ leases: 1, released: 1 });
    expect(miss.release).toBeUndefined();
    // The buffer just given back is read into by the next misses; the cached bytes stay.
    const others = await putFiles(reopened, [64 * KiB, 64 * KiB]);
    const uncacheable = await putFile(reopened, 100 * KiB);
    const again = await stores.reopen(reopened, { cacheSize: CACHE_SIZE_TESTED });
    const first = await again.get(cached.info.key);
    for (const other of [...others, uncacheable]) {
      const read = await again.get(other.info.key);
      expect(bytesOf(read).equals(other.bytes)).toBe(true);
      read.release?.();
    }
    expect(bytesOf(first).equals(cached.bytes)).toBe(true);
    const hit = await poolDuring(() => again.get(cached.info.key));
    expect(hit.pool.leases).toBe(0);
    expect(hit.result.release).toBeUndefined();
    expect(bytesOf(hit.result).equals(cached.bytes)).toBe(true);
    // A file larger than the cache takes is lent as with the cache off.
    const large = await again.get(uncacheable.info.key);
    expect(large.release).toBeTypeOf('function');
    large.release?.();
  });
});
