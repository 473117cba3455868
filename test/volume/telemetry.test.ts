import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEADER_SIZE } from '../../adapters/volume/needle.ts';
import type { VolumeStore } from '../../adapters/volume/volume-store.ts';
import {
  type CompactReport,
  isStoreError,
  type StoreObserver,
  type StoreTelemetry,
} from '../../storage/index.ts';
import { useVolumeStores } from '../support/volume-stores.ts';

/**
 * The volume store's telemetry (`capabilities.telemetry`), on a real store in a temp dir: what
 * its observers are told of flushes, corrupt reads and compactions, and the cache's counters.
 */

const stores = useVolumeStores('haystack-telemetry-');
const CONTENT_TYPE = 'application/octet-stream';

function telemetryOf(store: VolumeStore): StoreTelemetry {
  const telemetry = store.capabilities.telemetry;
  if (!telemetry) throw new Error('the volume store declares no telemetry');
  return telemetry;
}

/** An observer that records every event. */
function recorder() {
  const events = {
    flushes: [] as Array<{ writes: number; seconds: number }>,
    corrupt: [] as number[],
    compacted: [] as CompactReport[],
  };
  const observer: StoreObserver = {
    flushed: (writes, seconds) => events.flushes.push({ writes, seconds }),
    corruptRead: (volume) => events.corrupt.push(volume),
    compacted: (report) => events.compacted.push(report),
  };
  return { events, observer };
}

const throwing: StoreObserver = {
  flushed: () => {
    throw new Error('observer failed on a flush');
  },
  corruptRead: () => {
    throw new Error('observer failed on a corrupt read');
  },
  compacted: () => {
    throw new Error('observer failed on a compaction');
  },
};

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

async function drain(body: ReadableStream<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) bytes += chunk.byteLength;
  return bytes;
}

/** Flips one bit of volume 1's file, at `at`, with no store open on it. */
async function flipBit(at: number): Promise<void> {
  const file = await open(path.join(stores.dir(), '1.dat'), 'r+');
  try {
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, at);
    byte[0] = (byte[0] as number) ^ 0x10;
    await file.write(byte, 0, 1, at);
  } finally {
    await file.close();
  }
}

describe('volume store telemetry', () => {
  it('tells of group-commit flushes: the writes they made durable sum to the writes', async () => {
    const store = await stores.open();
    const { events, observer } = recorder();
    telemetryOf(store).observe(observer);
    const N = 40;
    await Promise.all(
      Array.from({ length: N }, (_, i) => store.put({ body: randomBytes(100 + i) })),
    );
    const infos = [];
    for (let i = 0; i < 3; i++) infos.push(await store.put({ body: randomBytes(10) }));
    // A delete and a replace are writes too.
    await store.delete((infos[0] as { key: number }).key);
    await store.replace((infos[1] as { key: number }).key, { body: randomBytes(10) });
    const writes = N + 3 + 2;
    expect(events.flushes.reduce((sum, f) => sum + f.writes, 0)).toBe(writes);
    expect(events.flushes.length).toBeGreaterThan(0);
    expect(events.flushes.length).toBeLessThanOrEqual(writes);
    for (const flush of events.flushes) {
      expect(flush.writes).toBeGreaterThanOrEqual(1);
      expect(flush.seconds).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(flush.seconds)).toBe(true);
    }
    // A sync makes no write durable: no flush of writes to tell of.
    const before = events.flushes.length;
    await store.sync();
    expect(events.flushes.length).toBe(before);
  });

  it('tells of no flush with fsync never (the OS decides when)', async () => {
    const store = await stores.open({ fsync: 'never' });
    const { events, observer } = recorder();
    telemetryOf(store).observe(observer);
    await Promise.all(Array.from({ length: 5 }, () => store.put({ body: randomBytes(50) })));
    expect(events.flushes).toEqual([]);
  });

  it('tells of a corrupt read once, with the volume, for whole, head and streamed reads', async () => {
    let store = await stores.open();
    const small = await store.put({ body: randomBytes(300), contentType: CONTENT_TYPE });
    const headless = await store.put({ body: randomBytes(300), contentType: CONTENT_TYPE });
    const large = await store.put({
      body: randomBytes(5 * 1024 * 1024),
      contentType: CONTENT_TYPE,
    });
    const intact = await store.put({ body: randomBytes(300), contentType: CONTENT_TYPE });
    const dataAt = (offset: number) => offset + HEADER_SIZE + CONTENT_TYPE.length + 100;
    await store.close();
    await flipBit(dataAt(small.offset));
    await flipBit(headless.offset + 9); // inside the header's key
    await flipBit(dataAt(large.offset) + 4 * 1024 * 1024); // far into the streamed data
    store = await stores.reopen(store);
    const { events, observer } = recorder();
    telemetryOf(store).observe(observer);

    expect(isStoreError(await errorOf(store.get(small.key)), 'corrupt')).toBe(true);
    expect(events.corrupt).toEqual([1]);
    // A range of a damaged whole-read needle is refused too: the whole needle is checked.
    expect(isStoreError(await errorOf(store.get(small.key, { start: 0, end: 9 })), 'corrupt')).toBe(
      true,
    );
    expect(events.corrupt).toEqual([1, 1]);
    expect(isStoreError(await errorOf(store.head(headless.key)), 'corrupt')).toBe(true);
    expect(events.corrupt).toEqual([1, 1, 1]);

    // The large file streams: its damage shows at the end, once the checksum is known.
    const read = await store.get(large.key);
    expect(read.body).toBeInstanceOf(ReadableStream);
    expect(events.corrupt).toHaveLength(3);
    const streamed = await errorOf(drain(read.body as ReadableStream<Uint8Array>));
    expect(isStoreError(streamed, 'corrupt')).toBe(true);
    expect(events.corrupt).toEqual([1, 1, 1, 1]);

    // Reads that succeed, and reads of keys that do not exist, tell nothing.
    expect((await store.get(intact.key)).info.key).toBe(intact.key);
    await store.head(large.key);
    expect(isStoreError(await errorOf(store.get(intact.key + 1000)), 'not_found')).toBe(true);
    expect(events.corrupt).toHaveLength(4);
  });

  it('tells of each compaction with the report the call answered', async () => {
    const store = await stores.open();
    const { events, observer } = recorder();
    telemetryOf(store).observe(observer);
    const files = [];
    for (let i = 0; i < 3; i++) files.push(await store.put({ body: randomBytes(200) }));
    await store.delete((files[0] as { key: number }).key);
    const reports = await store.compact();
    expect(reports).toHaveLength(1);
    expect(reports[0]?.reclaimedBytes).toBeGreaterThan(0);
    expect(events.compacted).toEqual(reports);
    expect(events.compacted[0]).toBe(reports[0]);
  });

  it('tells of automatic compactions too', async () => {
    const store = await stores.open({ volumeSize: 4096, compactAt: 0.5 });
    const { events, observer } = recorder();
    telemetryOf(store).observe(observer);
    const automatic = new Promise<CompactReport>((resolve) => {
      telemetryOf(store).observe({ compacted: resolve });
    });
    // Fill volume 1 until a new volume takes appends, then delete what it holds: the automatic
    // compactor takes it on its own.
    const inFirst: number[] = [];
    for (;;) {
      const info = await store.put({ body: randomBytes(500) });
      if (info.volume !== 1) break;
      inFirst.push(info.key);
    }
    for (const key of inFirst) await store.delete(key);
    const report = await automatic;
    expect(report.volume).toBe(1);
    expect(report.reclaimedBytes).toBeGreaterThan(0);
    expect(events.compacted).toContain(report);
  });

  it('stops telling an observer once it unsubscribed, and tells the others still', async () => {
    const store = await stores.open();
    const first = recorder();
    const second = recorder();
    const stopFirst = telemetryOf(store).observe(first.observer);
    telemetryOf(store).observe(second.observer);
    await store.put({ body: randomBytes(10) });
    expect(first.events.flushes).toHaveLength(1);
    stopFirst();
    stopFirst(); // twice is harmless
    await store.put({ body: randomBytes(10) });
    await store.compact(1);
    expect(first.events.flushes).toHaveLength(1);
    expect(first.events.compacted).toHaveLength(0);
    expect(second.events.flushes).toHaveLength(2);
    expect(second.events.compacted).toHaveLength(1);
  });

  it('keeps writes, reads and compactions working when an observer throws', async () => {
    let store = await stores.open();
    const after = recorder();
    telemetryOf(store).observe(throwing);
    telemetryOf(store).observe(after.observer);
    const infos = await Promise.all(
      Array.from({ length: 10 }, () => store.put({ body: randomBytes(300) })),
    );
    expect(after.events.flushes.reduce((sum, f) => sum + f.writes, 0)).toBe(10);
    await store.delete((infos[0] as { key: number }).key);
    expect((await store.compact(1))[0]?.volume).toBe(1);
    expect(after.events.compacted).toHaveLength(1);

    const damaged = infos[1] as { key: number; offset: number };
    const offset = (await store.head(damaged.key)).offset; // moved by the compaction
    await store.close();
    await flipBit(offset + HEADER_SIZE + CONTENT_TYPE.length + 10);
    store = await stores.reopen(store);
    telemetryOf(store).observe(throwing);
    const err = await errorOf(store.get(damaged.key));
    // The read's own answer, not the observer's error.
    expect(isStoreError(err, 'corrupt'), String(err)).toBe(true);
    expect((await store.put({ body: randomBytes(10) })).key).toBeGreaterThan(0);
  });

  it('reports the cache counters as they move with hits and misses', async () => {
    const cacheSize = 1024 * 1024;
    let store = await stores.open();
    const info = await store.put({ body: randomBytes(1000) });
    store = await stores.reopen(store, { cacheSize });
    const { cacheStats } = telemetryOf(store);
    if (!cacheStats) throw new Error('the volume store declares no cache counters');
    expect(cacheStats()).toEqual({ hits: 0, misses: 0, bytes: 0, entries: 0, maxBytes: cacheSize });
    await store.get(info.key); // not held since the restart: a miss, then kept
    expect(cacheStats()).toMatchObject({ hits: 0, misses: 1, entries: 1 });
    expect(cacheStats().bytes).toBeGreaterThan(1000);
    await store.get(info.key);
    await store.get(info.key);
    expect(cacheStats()).toMatchObject({ hits: 2, misses: 1, entries: 1 });

    store = await stores.reopen(store, { cacheSize: 0 });
    await store.get(info.key);
    expect(telemetryOf(store).cacheStats?.()).toEqual({
      hits: 0,
      misses: 0,
      bytes: 0,
      entries: 0,
      maxBytes: 0,
    });
  });
});
