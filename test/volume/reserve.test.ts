import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { VolumeStore } from '../../adapters/volume/index.ts';
import { useVolumeStores } from '../support/volume-stores.ts';

/**
 * Uploads of declared length over 1 MiB stream into space reserved up front in the writable
 * volume. A client that declares a large length and goes away must leave nothing that is counted
 * nowhere, and must not make the store start volumes without limit.
 */

const MiB = 1024 * 1024;
const SUPERBLOCK = 32;

const { dir, open, reopen } = useVolumeStores('haystack-reserve-');

/** A body that sends a few bytes, then waits until `fail` ends it as a client going away. */
function abortedBody(): { body: ReadableStream<Uint8Array>; fail: () => void } {
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      c.enqueue(randomBytes(10));
    },
  });
  return { body, fail: () => controller?.error(new Error('client went away')) };
}

/** Starts an upload that declares `length` bytes and never sends them. */
function startAborted(store: VolumeStore, length: number) {
  const { body, fail } = abortedBody();
  const answer = store.put({ body, length });
  answer.catch(() => {});
  return {
    async abort() {
      fail();
      await expect(answer).rejects.toMatchObject({ code: 'bad_request' });
    },
  };
}

async function volumeFiles(): Promise<string[]> {
  return (await readdir(dir())).filter((name) => name.endsWith('.dat'));
}

async function bytesOf(store: VolumeStore, key: number): Promise<Buffer> {
  const { body } = await store.get(key);
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('space reserved by uploads that never arrive', () => {
  it('is garbage once the upload fails, after a restart too, and compaction reclaims it', async () => {
    let store = await open();
    const aborted = startAborted(store, 3 * MiB);
    // Reserved at once, synchronously: the small file goes after it, so it cannot be given back.
    const hole = (await store.status()).bytes - SUPERBLOCK;
    expect(hole).toBeGreaterThan(3 * MiB);
    const small = randomBytes(100);
    const after = await store.put({ body: small });
    await aborted.abort();

    const expectHole = async (s: VolumeStore) => {
      const status = await s.status();
      expect(status.garbageBytes).toBe(hole);
      expect(status.volumes[0]?.garbageBytes).toBe(hole);
      expect(status.garbageRatio).toBeCloseTo(hole / status.bytes, 6);
      expect((await bytesOf(s, after.key)).equals(small)).toBe(true);
    };
    await expectHole(store);
    // After a restart with the index (the hole is a gap between its entries)...
    store = await reopen(store);
    await expectHole(store);
    // ...and without it (the scan finds the void needle).
    await store.close();
    await rm(join(dir(), '1.idx'));
    store = await open();
    await expectHole(store);

    const [report, ...others] = await store.compact();
    expect(others).toEqual([]);
    expect(report).toMatchObject({ volume: 1, reclaimedBytes: hole, inPlace: true });
    const status = await store.status();
    expect(status.garbageBytes).toBe(0);
    expect(status.bytes).toBe(SUPERBLOCK + (status.volumes[0]?.liveBytes ?? 0));
    // Mostly holes: compacted in place, no new volume.
    expect(await volumeFiles()).toEqual(['1.dat']);
    expect((await bytesOf(store, after.key)).equals(small)).toBe(true);
  });

  it('counts the hole once it stays behind, and nothing when the last slot gives its space back', async () => {
    const store = await open();
    const last = startAborted(store, 2 * MiB);
    await last.abort();
    expect(await store.status()).toMatchObject({ bytes: SUPERBLOCK, garbageBytes: 0 });
  });

  it('holds at most maxStreamingBytes for uploads in flight; the rest are spooled, costing what they sent', async () => {
    const store = await open({ volumeSize: 64 * MiB, maxStreamingBytes: 8 * MiB });
    const uploads = Array.from({ length: 70 }, () => startAborted(store, 3 * MiB));
    const reserved = (await store.status()).bytes - SUPERBLOCK;
    expect(reserved).toBeGreaterThan(2 * 3 * MiB);
    expect(reserved).toBeLessThanOrEqual(8 * MiB);
    await Promise.all(uploads.map((upload) => upload.abort()));
    expect(await volumeFiles()).toEqual(['1.dat']);
    expect((await readdir(dir())).filter((name) => name.endsWith('.spool'))).toEqual([]);
    // The holes left behind are counted, and compaction takes them away.
    const status = await store.status();
    expect(status.garbageBytes).toBe(status.bytes - SUPERBLOCK);
    await store.compact();
    expect(await store.status()).toMatchObject({ bytes: SUPERBLOCK, garbageBytes: 0 });
  });

  it('an honest upload past the limit still gets stored, through a spool file', async () => {
    const store = await open({ maxStreamingBytes: 0 });
    const bytes = randomBytes(3 * MiB);
    const info = await store.put({ body: new Blob([bytes]).stream(), length: bytes.byteLength });
    expect((await bytesOf(store, info.key)).equals(bytes)).toBe(true);
    const short = store.put({ body: new Blob([bytes]).stream(), length: bytes.byteLength + 1 });
    await expect(short).rejects.toMatchObject({ code: 'bad_request' });
    const long = store.put({ body: new Blob([bytes]).stream(), length: bytes.byteLength - 1 });
    await expect(long).rejects.toMatchObject({ code: 'bad_request' });
    expect((await store.status()).liveNeedles).toBe(1);
    expect((await readdir(dir())).filter((name) => name.endsWith('.spool'))).toEqual([]);
  });

  it('an attacker repeating forever never makes the store start a second volume', async () => {
    const volumeSize = 8 * MiB;
    let store = await open({ volumeSize }); // maxStreamingBytes: 2 MiB by default
    const kept = new Map<number, Buffer>();
    let honest: number | undefined;
    for (let round = 0; round < 60; round++) {
      // A concurrent burst, and a small file behind it, so that the holes stay.
      const burst = Array.from({ length: 8 }, () => startAborted(store, 1.5 * MiB));
      const bytes = randomBytes(200);
      kept.set((await store.put({ body: bytes })).key, bytes);
      await Promise.all(burst.map((upload) => upload.abort()));
      // An honest client replaces its file of a little under 1 MiB: once the volume is full of
      // holes, it is compacted in place rather than rolled over.
      const content = randomBytes(MiB - 100);
      const info =
        honest === undefined
          ? await store.put({ body: content })
          : await store.replace(honest, { body: content });
      if (honest !== undefined) kept.delete(honest);
      honest = info.key;
      kept.set(honest, content);
      if (round === 30) store = await reopen(store, { volumeSize });
      const status = await store.status();
      expect(status.volumes.map((v) => v.id)).toEqual([1]);
      expect(status.bytes).toBeLessThanOrEqual(volumeSize);
    }
    expect(await volumeFiles()).toEqual(['1.dat']);
    expect((await store.status()).liveNeedles).toBe(kept.size);
    for (const [key, bytes] of kept) expect((await bytesOf(store, key)).equals(bytes)).toBe(true);
  });

  it('a full writable volume that is mostly live data still makes way for a new one', async () => {
    const store = await open({ volumeSize: 64 * 1024 });
    const keys: number[] = [];
    for (let i = 0; i < 40; i++) keys.push((await store.put({ body: randomBytes(3000) })).key);
    const first = keys[0] as number;
    await store.delete(first);
    const status = await store.status();
    expect(status.volumes.length).toBeGreaterThan(1);
    expect(status.volumes.slice(0, -1).every((v) => v.sealed)).toBe(true);
    const [report] = await store.compact();
    expect(report?.volume).toBe(1);
  });
});
