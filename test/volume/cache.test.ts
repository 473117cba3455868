import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CACHE_MAX_FILE,
  CACHE_SIZE_TESTED,
  ENTRY_OVERHEAD,
  NeedleCache,
} from '../../adapters/volume/needle-cache.ts';
import { VolumeFile } from '../../adapters/volume/volume-file.ts';
import type { VolumeStore } from '../../adapters/volume/volume-store.ts';
import { type FileInfo, type FileRead, isStoreError } from '../../storage/index.ts';
import { type StoreOptions, useVolumeStores } from '../support/volume-stores.ts';

const volumeStores = useVolumeStores('haystack-cache-');
/** The cache is off by default: these tests open stores with it on unless they say otherwise. */
const stores = {
  ...volumeStores,
  open: (options: StoreOptions = {}) =>
    volumeStores.open({ cacheSize: CACHE_SIZE_TESTED, ...options }),
  reopen: (store: VolumeStore, options: StoreOptions = {}) =>
    volumeStores.reopen(store, { cacheSize: CACHE_SIZE_TESTED, ...options }),
};

afterEach(() => {
  vi.restoreAllMocks();
});

/** Counts the volume reads (both kinds) made while `run` runs. */
async function volumeReads<T>(run: () => Promise<T>): Promise<{ result: T; reads: number }> {
  const now = vi.spyOn(VolumeFile.prototype, 'readNow');
  const later = vi.spyOn(VolumeFile.prototype, 'read');
  try {
    const result = await run();
    return { result, reads: now.mock.calls.length + later.mock.calls.length };
  } finally {
    now.mockRestore();
    later.mockRestore();
  }
}

function bytesOf(read: FileRead): Buffer {
  expect(read.body).toBeInstanceOf(Uint8Array);
  const body = read.body as Uint8Array;
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

async function expectNotFound(promise: Promise<unknown>): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStoreError(err, 'not_found'), String(err)).toBe(true);
}

async function putBytes(store: VolumeStore, size: number) {
  const bytes = randomBytes(size);
  const info = await store.put({ body: bytes, contentType: 'image/png' });
  return { bytes, info };
}

describe('the volume store cache', () => {
  it('serves a file just written without reading the volume', async () => {
    const store = await stores.open();
    const { bytes, info } = await putBytes(store, 1024);
    const { result, reads } = await volumeReads(() => store.get(info.key));
    expect(reads).toBe(0);
    expect(bytesOf(result).equals(bytes)).toBe(true);
    expect(result.info).toEqual(info);
    expect(store.cacheStats()).toMatchObject({ hits: 1, misses: 0, entries: 1 });
    // A hit hands out the cached bytes themselves, not a copy.
    expect((await store.get(info.key)).body).toBe(result.body);
  });

  it('the caller may change the bytes it put: the cache holds its own copy', async () => {
    const store = await stores.open();
    const { bytes, info } = await putBytes(store, 2048);
    const original = Buffer.from(bytes);
    bytes.fill(0);
    expect(bytesOf(await store.get(info.key)).equals(original)).toBe(true);
  });

  it('fills on a read from the volume, once its checksum verified', async () => {
    let store = await stores.open();
    const { bytes, info } = await putBytes(store, 64 * 1024);
    store = await stores.reopen(store);
    expect(store.cacheStats().entries).toBe(0);

    const first = await volumeReads(() => store.get(info.key));
    expect(first.reads).toBe(1);
    expect(bytesOf(first.result).equals(bytes)).toBe(true);
    const second = await volumeReads(() => store.get(info.key));
    expect(second.reads).toBe(0);
    expect(bytesOf(second.result).equals(bytes)).toBe(true);
    expect(second.result.info).toEqual(info);
    expect(store.cacheStats()).toMatchObject({ hits: 1, misses: 1, entries: 1 });
  });

  it('head answers from the cache too, and what get and head answer is frozen', async () => {
    const store = await stores.open();
    const { info } = await putBytes(store, 100);
    const { result, reads } = await volumeReads(() => store.head(info.key));
    expect(reads).toBe(0);
    expect(result).toEqual(info);
    expect(() => Object.assign(result, { size: 1 })).toThrow(TypeError);
    const read = await store.get(info.key);
    expect(() => Object.assign(read.info, { contentType: 'x/y' })).toThrow(TypeError);
    expect((await store.head(info.key)).size).toBe(100);
  });

  it('a delete evicts at once: the key never reads back', async () => {
    const store = await stores.open();
    const { info } = await putBytes(store, 1024);
    await store.get(info.key);
    await store.delete(info.key);
    expect(store.cacheStats()).toMatchObject({ entries: 0, bytes: 0 });
    await expectNotFound(store.get(info.key));
    await expectNotFound(store.head(info.key));
  });

  it('a replace evicts the old key and caches the new file', async () => {
    const store = await stores.open();
    const { info: old } = await putBytes(store, 1024);
    const bytes = randomBytes(512);
    const info = await store.replace(old.key, { body: bytes, contentType: 'text/plain' });
    await expectNotFound(store.get(old.key));
    await expectNotFound(store.head(old.key));
    expect(store.cacheStats().entries).toBe(1);
    const { result, reads } = await volumeReads(() => store.get(info.key));
    expect(reads).toBe(0);
    expect(bytesOf(result).equals(bytes)).toBe(true);
    expect(result.info.contentType).toBe('text/plain');
  });

  it('a cached file with the wrong cookie is not_found; with the right one it is served', async () => {
    const store = await stores.open();
    const { bytes, info } = await putBytes(store, 1024);
    const wrong = (info.cookie + 1) >>> 0;
    await expectNotFound(store.get(info.key, undefined, wrong));
    await expectNotFound(store.head(info.key, wrong));
    await expectNotFound(store.delete(info.key, wrong));
    const { result, reads } = await volumeReads(() => store.get(info.key, undefined, info.cookie));
    expect(reads).toBe(0);
    expect(bytesOf(result).equals(bytes)).toBe(true);
  });

  it('serves ranges of a cached file', async () => {
    const store = await stores.open();
    const { bytes, info } = await putBytes(store, 4096);
    for (const [start, end] of [
      [0, 0],
      [0, 4095],
      [100, 199],
      [4095, 4095],
    ] as const) {
      const { result, reads } = await volumeReads(() => store.get(info.key, { start, end }));
      expect(reads).toBe(0);
      expect(bytesOf(result).equals(bytes.subarray(start, end + 1))).toBe(true);
      expect(result.info.size).toBe(4096);
    }
    // A range leaves the cached whole file as it was.
    expect(bytesOf(await store.get(info.key)).equals(bytes)).toBe(true);
  });

  it('compaction moves cached files: the bytes stay right and the info names the new place', async () => {
    const store = await stores.open();
    const dead = await putBytes(store, 8192);
    const files = [await putBytes(store, 1024), await putBytes(store, 3000)];
    await store.delete(dead.info.key);
    for (const { info } of files) await store.get(info.key);
    expect(store.cacheStats().entries).toBe(2);
    const [report] = await store.compact(1);
    expect(report?.reclaimedBytes).toBeGreaterThan(0);

    for (const { bytes, info } of files) {
      const { result, reads } = await volumeReads(() => store.get(info.key));
      expect(reads).toBe(0);
      expect(bytesOf(result).equals(bytes)).toBe(true);
      expect(result.info.offset).toBeLessThan(info.offset);
      expect(await store.head(info.key)).toEqual(result.info);
    }
    // The same answers as a store without a cache gives for the compacted volume.
    const uncached = await stores.reopen(store, { cacheSize: 0 });
    for (const { bytes, info } of files) {
      const read = await uncached.get(info.key);
      expect(bytesOf(read).equals(bytes)).toBe(true);
      expect(read.info.offset).toBeLessThan(info.offset);
    }
  });

  it('never holds more than cacheSize bytes, counting data and the per-entry overhead', async () => {
    const size = 1000;
    const contentType = 'image/png';
    const cost = size + contentType.length + ENTRY_OVERHEAD;
    const cacheSize = 10 * cost + Math.floor(cost / 2);
    const store = await stores.open({ cacheSize });
    const written: Array<{ bytes: Buffer; info: FileInfo }> = [];
    for (let i = 0; i < 40; i++) {
      written.push(await putBytes(store, size));
      const stats = store.cacheStats();
      expect(stats.bytes).toBeLessThanOrEqual(cacheSize);
      expect(stats.bytes).toBe(stats.entries * cost);
    }
    expect(store.cacheStats().entries).toBe(10);
    // Every file still reads back, from the cache or from the volume.
    for (const { bytes, info } of written) {
      expect(bytesOf(await store.get(info.key)).equals(bytes)).toBe(true);
      expect(store.cacheStats().bytes).toBeLessThanOrEqual(cacheSize);
    }
  });

  it('caches files up to 64 KiB only', async () => {
    const store = await stores.open();
    const big = await putBytes(store, CACHE_MAX_FILE + 1);
    await store.get(big.info.key);
    expect(store.cacheStats()).toMatchObject({ entries: 0, hits: 0 });
    const { reads } = await volumeReads(() => store.get(big.info.key));
    expect(reads).toBe(1);
    await putBytes(store, CACHE_MAX_FILE);
    expect(store.cacheStats().entries).toBe(1);
  });

  it('cacheSize 0 caches nothing', async () => {
    const store = await stores.open({ cacheSize: 0 });
    const { bytes, info } = await putBytes(store, 1024);
    for (let i = 0; i < 2; i++) {
      const { result, reads } = await volumeReads(() => store.get(info.key));
      expect(reads).toBe(1);
      expect(bytesOf(result).equals(bytes)).toBe(true);
    }
    expect(store.cacheStats()).toEqual({ hits: 0, misses: 0, bytes: 0, entries: 0, maxBytes: 0 });
  });

  it('a write that failed on the disk caches nothing', async () => {
    const store = await stores.open();
    const eio = Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
    // Small appends are written on the event loop's thread (writeNow), others in the pool.
    vi.spyOn(VolumeFile.prototype, 'write').mockRejectedValue(eio);
    vi.spyOn(VolumeFile.prototype, 'writeNow').mockImplementation(() => {
      throw eio;
    });
    const err = await store.put({ body: randomBytes(1024) }).catch((e: unknown) => e);
    expect(isStoreError(err, 'io_error'), String(err)).toBe(true);
    expect(store.cacheStats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('a flush that failed caches nothing', async () => {
    const store = await stores.open();
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    vi.spyOn(VolumeFile.prototype, 'datasync').mockRejectedValue(eio);
    const err = await store.put({ body: randomBytes(1024) }).catch((e: unknown) => e);
    expect(isStoreError(err, 'io_error'), String(err)).toBe(true);
    expect(store.cacheStats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('a replica write fills the cache as a put does; its retry leaves it as it was', async () => {
    const store = await stores.open();
    const putReplica = store.capabilities.replicas?.putReplica;
    if (!putReplica) throw new Error('the volume store takes replica writes');
    const bytes = randomBytes(1024);
    const cookie = 0x1234abcd;
    const info = await putReplica(500, cookie, { body: bytes, contentType: 'image/png' });
    expect(store.cacheStats().entries).toBe(1);
    const { result, reads } = await volumeReads(() => store.get(500, undefined, cookie));
    expect(reads).toBe(0);
    expect(bytesOf(result).equals(bytes)).toBe(true);
    expect(result.info).toEqual(info);
    await expectNotFound(store.get(500, undefined, cookie ^ 1));

    expect(await putReplica(500, cookie, { body: bytes, contentType: 'image/png' })).toEqual(info);
    expect(store.cacheStats().entries).toBe(1);
    expect(bytesOf(await store.get(500)).equals(bytes)).toBe(true);
    await store.delete(500);
    await expectNotFound(store.get(500));
    expect(store.cacheStats().entries).toBe(0);
  });
});

describe('NeedleCache', () => {
  const info = (key: number, size: number): FileInfo => ({
    key,
    size,
    volume: 1,
    offset: key * 8,
    cookie: key,
    contentType: 'a/b',
    etag: `"${key}-0000000${key}"`,
  });
  const cost = (size: number) => size + 'a/b'.length + ENTRY_OVERHEAD;

  it('gives an entry read since it was last looked at a second chance (CLOCK)', () => {
    const cache = new NeedleCache(3 * cost(10));
    for (const key of [1, 2, 3]) cache.fill(info(key, 10), new Uint8Array(10));
    expect(cache.get(1)).toBeDefined();
    cache.fill(info(4, 10), new Uint8Array(10));
    expect(cache.get(2)).toBeUndefined();
    expect(cache.get(1)).toBeDefined();
    expect(cache.get(3)).toBeDefined();
    expect(cache.get(4)).toBeDefined();
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 3 * cost(10) });
  });

  it('keeps nothing that alone would not fit, and nothing over 64 KiB', () => {
    const cache = new NeedleCache(cost(100));
    const read = cache.fill(info(1, 101), new Uint8Array(101));
    expect((read.body as Uint8Array).byteLength).toBe(101);
    expect(cache.stats().entries).toBe(0);
    const roomy = new NeedleCache(10 * CACHE_MAX_FILE);
    roomy.fill(info(2, CACHE_MAX_FILE + 1), new Uint8Array(CACHE_MAX_FILE + 1));
    expect(roomy.stats().entries).toBe(0);
  });

  it('refuses a size that is not a byte count', () => {
    expect(() => new NeedleCache(-1)).toThrow(RangeError);
    expect(() => new NeedleCache(1.5)).toThrow(RangeError);
  });
});
