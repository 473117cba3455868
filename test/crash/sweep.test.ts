import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVolumeStore, rebuildIndexes, type VolumeStore } from '../../adapters/volume/index.ts';
import { needleLength, TOMBSTONE_LENGTH } from '../../adapters/volume/needle.ts';
import type { FileInfo } from '../../storage/index.ts';
import { makeMemoryTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * Every byte cut, every byte flipped. A small volume (five files, one deleted, then one more) is
 * damaged one byte position at a time; after each damage, start-up (`openVolumeStore`) and
 * `rebuildIndexes` must not throw, no read may answer wrong bytes, and only the damaged needle
 * (plus, for a cut, what lies after the cut) may be lost. In-process, with tiny needles and one
 * reused buffer, so the few hundred openings stay fast.
 */

interface Recorded {
  kind: 'file' | 'tombstone';
  key: number;
  offset: number;
  length: number;
  bytes?: Buffer;
  contentType?: string;
}

let dir: string;
let datPath: string;
let idxPath: string;
let original: Buffer;
let originalIndex: Buffer;
let records: Recorded[];

beforeAll(async () => {
  dir = await makeMemoryTempDir('haystack-sweep-');
  datPath = path.join(dir, '1.dat');
  idxPath = path.join(dir, '1.idx');
  const store = await openVolumeStore({ dir });
  records = [];
  const put = async (data: string, contentType?: string): Promise<FileInfo> => {
    const bytes = Buffer.from(data, 'latin1');
    const info = await store.put({ body: bytes, ...(contentType ? { contentType } : {}) });
    records.push({
      kind: 'file',
      key: info.key,
      offset: info.offset,
      length: needleLength(Buffer.byteLength(info.contentType, 'latin1'), bytes.byteLength),
      bytes,
      contentType: info.contentType,
    });
    return info;
  };
  await put('first file', 'a/b');
  await put('', 'text/plain');
  await put('the middle one!!', 'image/x'); // the needle whose bytes are flipped
  const deleted = await put('gone!', 'c/d');
  await store.delete(deleted.key);
  const last = records.at(-1) as Recorded;
  records.push({
    kind: 'tombstone',
    key: deleted.key,
    offset: last.offset + last.length,
    length: TOMBSTONE_LENGTH,
  });
  await put('the last file, 24 bytes', 'x/y');
  await store.close();
  original = await readFile(datPath);
  originalIndex = await readFile(idxPath);
  // The records tile the volume after its superblock: the model matches the file.
  let end = 32;
  for (const r of records) {
    expect(r.offset).toBe(end);
    end += r.length;
  }
  expect(end).toBe(original.byteLength);
});

afterAll(async () => {
  await removeTempDir(dir);
});

/** Files live after replaying `survivors` in volume order. */
function liveAfter(survivors: readonly Recorded[]): Map<number, Recorded> {
  const live = new Map<number, Recorded>();
  for (const r of survivors) {
    if (r.kind === 'file') live.set(r.key, r);
    else live.delete(r.key);
  }
  return live;
}

/**
 * Every key: live ones byte-exact with their type, others not_found; `damaged` (the key of the
 * damaged needle) may instead answer its exact bytes, not_found or corrupt, never other bytes.
 */
async function expectState(
  store: VolumeStore,
  live: Map<number, Recorded>,
  damaged: number | undefined,
  what: string,
): Promise<void> {
  const keys = new Set(records.map((r) => r.key));
  for (const key of keys) {
    const expected = live.get(key) ?? (key === damaged ? originalFile(key) : undefined);
    let read: { bytes: Buffer; contentType: string } | { code: string };
    try {
      const { info, body } = await store.get(key);
      expect(body).toBeInstanceOf(Uint8Array);
      read = { bytes: Buffer.from(body as Uint8Array), contentType: info.contentType };
    } catch (err) {
      read = { code: (err as { code: string }).code };
    }
    const where = `${what}, key ${key}`;
    if ('code' in read) {
      const allowed =
        key === damaged ? ['not_found', 'corrupt'] : live.has(key) ? [] : ['not_found'];
      expect(allowed, `${where}: ${read.code}`).toContain(read.code);
    } else {
      expect(expected, `${where}: answered although it should be gone`).toBeDefined();
      expect(read.bytes.equals(expected?.bytes ?? Buffer.alloc(0)), `${where}: bytes`).toBe(true);
      expect(read.contentType, `${where}: type`).toBe(expected?.contentType);
    }
  }
}

function originalFile(key: number): Recorded | undefined {
  return records.find((r) => r.kind === 'file' && r.key === key);
}

async function withStore(
  what: string,
  check: (store: VolumeStore) => Promise<void>,
  log: (line: string) => void = () => {},
) {
  let store: VolumeStore;
  try {
    store = await openVolumeStore({ dir, log });
  } catch (err) {
    throw new Error(`${what}: start-up threw ${String(err)}`);
  }
  try {
    await check(store);
  } finally {
    await store.close();
  }
}

async function rebuild(what: string) {
  try {
    return await rebuildIndexes({ dir });
  } catch (err) {
    throw new Error(`${what}: rebuildIndexes threw ${String(err)}`);
  }
}

describe('every byte cut', () => {
  it('at each offset of the last two needles: start-up and reload keep everything before the cut', async () => {
    const tombstone = records.at(-2) as Recorded;
    let cuts = 0;
    for (let cut = tombstone.offset; cut < original.byteLength; cut++) {
      const survivors = records.filter((r) => r.offset + r.length <= cut);
      const live = liveAfter(survivors);

      // Start-up with the old index, whose last entries point past the cut.
      await writeFile(datPath, original.subarray(0, cut));
      await writeFile(idxPath, originalIndex);
      await withStore(`cut at ${cut}`, async (store) => {
        await expectState(store, live, undefined, `cut at ${cut}`);
        expect((await store.status()).liveNeedles).toBe(live.size);
      });

      // reload first, on the cut volume (start-up has not cut its torn tail yet), then start-up.
      await writeFile(datPath, original.subarray(0, cut));
      await rm(idxPath);
      const report = await rebuild(`cut at ${cut}`);
      expect(report.live).toBe(live.size);
      expect(report.problems.length).toBeLessThanOrEqual(1); // the torn tail, if any
      await withStore(`cut at ${cut}, after reload`, (store) =>
        expectState(store, live, undefined, `cut at ${cut}, after reload`),
      );
      cuts++;
    }
    expect(cuts).toBe(TOMBSTONE_LENGTH + (records.at(-1) as Recorded).length);
  });
});

describe('every byte flipped', () => {
  for (const which of ['file', 'tombstone'] as const) {
    it(`in a ${which} in the middle: only that needle may be lost, no wrong bytes`, async () => {
      const target = records.find((r) => r.kind === which && r !== records.at(-1)) as Recorded;
      const damagedKey = target.key;
      // A lost tombstone brings its file back; a lost file is gone.
      const live = liveAfter(records.filter((r) => r !== target));
      if (which === 'file') live.delete(damagedKey);
      for (let at = target.offset; at < target.offset + target.length; at++) {
        const what = `byte ${at - target.offset} of the ${which} of key ${damagedKey} flipped`;
        original.writeUInt8(original.readUInt8(at) ^ 0xff, at);
        try {
          // Start-up trusting the index: the read must catch the damage.
          await writeFile(datPath, original);
          await writeFile(idxPath, originalIndex);
          await withStore(what, (store) => expectState(store, live, damagedKey, what));

          // No index: the scan steps over the damage; and reload does the same.
          await rm(idxPath);
          await withStore(`${what}, no index`, (store) =>
            expectState(store, live, damagedKey, `${what}, no index`),
          );
          await writeFile(datPath, original);
          await rm(idxPath);
          const report = await rebuild(what);
          expect(report.corrupt, what).toBeLessThanOrEqual(1);
          await withStore(`${what}, after reload`, (store) =>
            expectState(store, live, damagedKey, `${what}, after reload`),
          );
        } finally {
          original.writeUInt8(original.readUInt8(at) ^ 0xff, at);
        }
      }
    });
  }
});

/**
 * The volume as a crash leaves it when the store writes zeros ahead of its tail: the needles,
 * then zeros up to where the last zero step got (written, or a hole if only the size reached the
 * disk). Zeros from a needle boundary to the end are the end of the volume; anything else there
 * is damage, handled like a torn tail.
 */
describe('every byte cut, with zeros ahead of the tail', () => {
  const ZEROS = 4096 + 24;

  it('a needle cut at each offset of the last two, then zeros: start-up and reload keep everything before the cut', async () => {
    const tombstone = records.at(-2) as Recorded;
    for (let cut = tombstone.offset; cut <= original.byteLength; cut++) {
      const what = `cut at ${cut}, then ${ZEROS} zeros`;
      const volume = Buffer.concat([original.subarray(0, cut), Buffer.alloc(ZEROS)]);
      // A needle cut only in its zero padding is whole again.
      const intact = (r: Recorded) =>
        volume
          .subarray(r.offset, r.offset + r.length)
          .equals(original.subarray(r.offset, r.offset + r.length));
      const survivors = records.filter(intact);
      const live = liveAfter(survivors);
      // The needle the cut went through, if any.
      const cutNeedle = records.find((r) => r.offset < cut && !intact(r));

      // Start-up with the index as it was: entries are written only for needles on disk, so it
      // describes the needles before the cut (here all of them, its last entries maybe lagging).
      await writeFile(datPath, volume);
      await writeFile(idxPath, originalIndex.subarray(0, 16 + 16 * survivors.length));
      await withStore(what, async (store) => {
        await expectState(store, live, undefined, what);
        expect((await store.status()).liveNeedles).toBe(live.size);
      });

      await writeFile(datPath, volume);
      await rm(idxPath);
      const report = await rebuild(what);
      expect(report.live, what).toBe(live.size);
      // The cut needle: a torn tail, or a needle whose checksum fails; nothing else.
      expect(report.problems.length, what).toBe(cutNeedle ? 1 : 0);
      await withStore(`${what}, after reload`, async (store) => {
        await expectState(store, live, undefined, `${what}, after reload`);
        expect((await store.status()).liveNeedles).toBe(live.size);
      });
      // Start-up cut the zeros off: the volume ends at its last needle or damaged region.
      expect((await stat(datPath)).size, what).toBeLessThanOrEqual(cut + ZEROS);
      expect((await stat(datPath)).size, what).toBeLessThan(volume.byteLength);
    }
  });

  it('cut anywhere in the zeros, written or a hole: nothing lost, nothing reported, the zeros cut off', async () => {
    const live = liveAfter(records);
    const lengths = [...Array.from({ length: 65 }, (_, i) => i), 1000, 4095, 4096, 4097, ZEROS];
    for (const sparse of [false, true]) {
      for (const zeros of lengths) {
        const what = `${zeros} zeros${sparse ? ' (a hole)' : ''} after the last needle`;
        if (sparse) {
          await writeFile(datPath, original);
          await truncate(datPath, original.byteLength + zeros);
        } else {
          await writeFile(datPath, Buffer.concat([original, Buffer.alloc(zeros)]));
        }
        await writeFile(idxPath, originalIndex);
        const report = await rebuild(what);
        expect(report.problems, what).toEqual([]);
        expect(report.bytes, what).toBe(original.byteLength);
        const logs: string[] = [];
        await withStore(
          what,
          async (store) => {
            await expectState(store, live, undefined, what);
            expect((await store.status()).volumes[0]?.bytes, what).toBe(original.byteLength);
          },
          (line) => logs.push(line),
        );
        expect(logs, what).toEqual([]);
        expect((await readFile(datPath)).equals(original), what).toBe(true);
      }
    }
  });

  it('a byte set anywhere in the zeros is damage (a torn tail, reported and cut), never taken for the end', async () => {
    const live = liveAfter(records);
    const ZEROS_HERE = 96;
    for (let at = 0; at < ZEROS_HERE; at++) {
      const what = `byte ${at} of ${ZEROS_HERE} zeros set`;
      const zeros = Buffer.alloc(ZEROS_HERE);
      zeros.writeUInt8(0x01 << (at % 8), at);
      const volume = Buffer.concat([original, zeros]);
      await writeFile(datPath, volume);
      await rm(idxPath);
      const report = await rebuild(what);
      expect(
        report.problems.map((p) => p.message),
        what,
      ).toEqual([expect.stringMatching(/^torn tail, cut at the next start/)]);
      expect(report.problems[0]?.offset, what).toBe(original.byteLength);
      const logs: string[] = [];
      await withStore(
        what,
        (store) => expectState(store, live, undefined, what),
        (line) => logs.push(line),
      );
      expect(logs, what).toEqual([
        expect.stringMatching(new RegExp(`cut a torn tail of ${ZEROS_HERE} bytes`)),
      ]);
      expect((await readFile(datPath)).equals(original), what).toBe(true);
    }
  });

  it('zeros in place of a needle are not the end when a needle follows them', async () => {
    const middle = records[2] as Recorded;
    const volume = Buffer.from(original);
    volume.fill(0, middle.offset, middle.offset + middle.length);
    const zeroed = Buffer.concat([volume, Buffer.alloc(1024)]);
    const live = liveAfter(records.filter((r) => r !== middle));
    await writeFile(datPath, zeroed);
    await rm(idxPath);
    const report = await rebuild('a needle zeroed');
    expect(report.live).toBe(live.size);
    expect(report.problems.map((p) => p.offset)).toEqual([middle.offset]);
    await withStore('a needle zeroed', (store) =>
      expectState(store, live, middle.key, 'a needle zeroed'),
    );
  });
});
