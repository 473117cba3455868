import { describe, expect, it } from 'vitest';
import { MAX_VOLUME_BYTES } from '../../adapters/volume/index-file.ts';
import { MapNeedleMap, type NeedleLocation } from '../../adapters/volume/needle-map.ts';
import { PackedNeedleMap } from '../../adapters/volume/packed-needle-map.ts';

const TWO_32 = 2 ** 32;
const MAX_KEY = Number.MAX_SAFE_INTEGER;
const MAX_OFFSET = TWO_32 * 8 - 8;
const TWO_16 = 2 ** 16;
/** A chunk's bytes per slot in the usual case, and with each optional u16 plane. */
const SLOT = 8;
const PLANE = 2;

function at(offset: number, length = 48, volume = 1): NeedleLocation {
  return { volume, offset, length };
}

/** Deterministic PRNG (mulberry32), so a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_32;
  };
}

function sameLocation(a: NeedleLocation, b: NeedleLocation): boolean {
  return a.volume === b.volume && a.offset === b.offset && a.length === b.length;
}

function sortedEntries(map: { entries(): IterableIterator<[number, NeedleLocation]> }) {
  return [...map.entries()].sort((a, b) => a[0] - b[0]);
}

describe('PackedNeedleMap', () => {
  it('starts empty', () => {
    const map = new PackedNeedleMap();
    expect(map.size).toBe(0);
    expect(map.get(1)).toBeUndefined();
    expect(map.delete(1)).toBe(false);
    expect([...map.entries()]).toEqual([]);
    map.assertConsistent();
  });

  it('stores, finds, updates and deletes', () => {
    const map = new PackedNeedleMap();
    map.set(1, at(32, 1064, 1));
    map.set(2, at(1096, 40, 1));
    expect(map.size).toBe(2);
    expect(map.get(1)).toEqual(at(32, 1064, 1));
    expect(map.get(2)).toEqual(at(1096, 40, 1));
    expect(map.get(3)).toBeUndefined();
    expect(map.get(0)).toBeUndefined();

    map.set(1, at(2048, 56, 7));
    expect(map.size).toBe(2);
    expect(map.get(1)).toEqual(at(2048, 56, 7));

    expect(map.delete(1)).toBe(true);
    expect(map.delete(1)).toBe(false);
    expect(map.get(1)).toBeUndefined();
    expect(map.size).toBe(1);

    // A deleted key can be set again, like in a Map (the store never does it).
    map.set(1, at(4096));
    expect(map.get(1)).toEqual(at(4096));
    expect(map.size).toBe(2);
    expect([...map.entries()]).toEqual([
      [1, at(4096)],
      [2, at(1096, 40, 1)],
    ]);
    map.assertConsistent();
  });

  it('holds the extremes of every field', () => {
    const map = new PackedNeedleMap();
    map.set(0, at(0, 8, 0));
    map.set(MAX_KEY, at(MAX_OFFSET, MAX_OFFSET, 999_999_999));
    map.set(TWO_32, at(8, 8, 2 ** 31));
    map.set(TWO_32 - 1, at(16, 16, 2 ** 16));
    expect(map.get(0)).toEqual(at(0, 8, 0));
    expect(map.get(MAX_KEY)).toEqual(at(MAX_OFFSET, MAX_OFFSET, 999_999_999));
    expect(map.get(TWO_32)).toEqual(at(8, 8, 2 ** 31));
    expect(map.get(TWO_32 - 1)).toEqual(at(16, 16, 2 ** 16));
    expect(map.get(MAX_KEY - 1)).toBeUndefined();
    expect(map.get(1)).toBeUndefined();
    expect([...map.entries()].map(([key]) => key)).toEqual([0, TWO_32 - 1, TWO_32, MAX_KEY]);
    map.assertConsistent();
  });

  it('keeps keys more than 2^32 apart in separate chunks, in both orders', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 4 });
    const keys = [5, 5 + TWO_32, 5 + 3 * TWO_32, 6, 5 + 2 * TWO_32, 4, 5 + TWO_32 - 1, 1];
    keys.forEach((key, i) => {
      map.set(key, at(i * 8, 40));
      map.assertConsistent();
    });
    keys.forEach((key, i) => {
      expect(map.get(key)).toEqual(at(i * 8, 40));
    });
    expect(map.get(5 + TWO_32 + 1)).toBeUndefined();
    expect(map.get(7)).toBeUndefined();
    const sorted = [...keys].sort((a, b) => a - b);
    expect([...map.entries()].map(([key]) => key)).toEqual(sorted);
    // From above any key, in the map or not: the keys above it, in order.
    for (const after of [-1, 0, ...sorted, ...sorted.map((key) => key + 1), 5 + TWO_32 + 1]) {
      const above = [...map.entries(after)].map(([key]) => key);
      expect(above, `above ${after}`).toEqual(sorted.filter((key) => key > after));
    }
  });

  it('refuses what it cannot represent, and changes nothing', () => {
    const map = new PackedNeedleMap();
    map.set(10, at(64));
    const bad: Array<[number, NeedleLocation]> = [
      [-1, at(64)],
      [1.5, at(64)],
      [2 ** 53, at(64)],
      [Number.NaN, at(64)],
      [11, at(63)],
      [11, at(-8)],
      [11, at(TWO_32 * 8)],
      [11, at(64, 0)],
      [11, at(64, 44)],
      [11, at(64, TWO_32 * 8)],
    ];
    for (const [key, location] of bad) {
      expect(() => map.set(key, location)).toThrow(RangeError);
    }
    expect(map.size).toBe(1);
    expect([...map.entries()]).toEqual([[10, at(64)]]);
    map.assertConsistent();
  });

  it('finds nothing under what is not a key', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 4 });
    for (let key = 1; key <= 20; key++) map.set(key, at(key * 8));
    const notKeys = [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -1,
      -10,
      0.5,
      9.5,
      10 - 1e-9,
      20.5,
      2 ** 53,
      2 ** 64 + 10,
    ];
    for (const key of notKeys) {
      expect(map.get(key)).toBeUndefined();
      expect(map.delete(key)).toBe(false);
    }
    expect(map.size).toBe(20);
    map.assertConsistent();
  });

  it('maps up to 65,536 distinct volume ids', () => {
    const map = new PackedNeedleMap();
    for (let volume = 0; volume < 2 ** 16; volume++) map.set(volume + 1, at(8, 8, volume * 3));
    expect(map.get(2 ** 16)).toEqual(at(8, 8, (2 ** 16 - 1) * 3));
    expect(() => map.set(2 ** 16 + 1, at(8, 8, -1))).toThrow(RangeError);
    expect(map.size).toBe(2 ** 16);
    // Known volumes still work.
    map.set(2 ** 16 + 1, at(8, 8, 3));
    expect(map.get(2 ** 16 + 1)).toEqual(at(8, 8, 3));
  });

  it('keeps 8 bytes per slot until a chunk needs a wider field, then adds only that plane', () => {
    const capacity = 16;
    const chunk = capacity * SLOT;
    const plane = capacity * PLANE;
    // Dense keys, one volume, needles under 512 KiB: the main buffer alone.
    const map = new PackedNeedleMap({ chunkCapacity: capacity });
    for (let key = 1; key <= capacity; key++) map.set(key, at(key * 8, (TWO_16 - 1) * 8));
    expect(map.byteLength).toBe(chunk);
    // Deltas up to 2^16 - 1 still fit in the low half.
    const sparse = new PackedNeedleMap({ chunkCapacity: capacity });
    sparse.set(10, at(8));
    sparse.set(10 + TWO_16 - 1, at(16));
    expect(sparse.byteLength).toBe(chunk);
    sparse.set(10 + TWO_16, at(24)); // delta 2^16: the high-delta plane
    expect(sparse.byteLength).toBe(chunk + plane);
    sparse.set(11, at(32, TWO_16 * 8)); // 512 KiB: the high-length plane
    expect(sparse.byteLength).toBe(chunk + 2 * plane);
    sparse.set(12, at(40, 48, 2)); // a second volume: the volume plane
    expect(sparse.byteLength).toBe(chunk + 3 * plane);
    expect(sparse.byteLength).toBeLessThanOrEqual(capacity * 14);
    expect(sparse.get(10)).toEqual(at(8));
    expect(sparse.get(11)).toEqual(at(32, TWO_16 * 8));
    expect(sparse.get(12)).toEqual(at(40, 48, 2));
    expect(sparse.get(10 + TWO_16 - 1)).toEqual(at(16));
    expect(sparse.get(10 + TWO_16)).toEqual(at(24));
    expect(sparse.get(10 + TWO_16 + 1)).toBeUndefined();
    sparse.assertConsistent();
  });

  it('holds key deltas past 16 bits in a chunk, through inserts, prepends, splits and merges', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 8 });
    const reference = new MapNeedleMap();
    const set = (key: number) => {
      map.set(key, at((key % 2 ** 20) * 8));
      reference.set(key, at((key % 2 ** 20) * 8));
      map.assertConsistent();
    };
    // One chunk from 0 to 2^32 - 1 (the widest delta), then 2^32 (the next chunk).
    for (const key of [0, 1, TWO_16 - 1, TWO_16, TWO_16 + 1, 3 * TWO_16 + 5, TWO_32 - 1, TWO_32]) {
      set(key);
    }
    // Late keys between them, so the wide chunk splits and shifts.
    for (const key of [2, TWO_16 - 2, TWO_16 + 2, 2 * TWO_16, TWO_32 - 2, 5, 7 * TWO_16]) set(key);
    // A chunk of dense keys far above, then a key below its base: a prepend whose rebase pushes
    // the chunk's deltas past 16 bits.
    for (let key = 10 * TWO_32; key < 10 * TWO_32 + 6; key++) set(key);
    set(10 * TWO_32 - 3 * TWO_16);
    set(10 * TWO_32 - TWO_32 + 1); // 2^32 - 1 below the highest key of that chunk
    for (const [key, value] of reference.entries()) expect(map.get(key)).toEqual(value);
    expect(sortedEntries(map)).toEqual(sortedEntries(reference));
    // Deletes sweep and merge chunks whose keys are 2^16 and more apart.
    for (const [key] of sortedEntries(reference)) {
      if (key % 3 !== 0) {
        expect(map.delete(key)).toBe(reference.delete(key));
        map.assertConsistent();
      }
    }
    expect(map.size).toBe(reference.size);
    expect(sortedEntries(map)).toEqual(sortedEntries(reference));
    expect(map.get(TWO_16 + 1)).toBeUndefined();
  });

  it('holds offsets and lengths up to the largest volume, and lengths at 2^16 units', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 4 });
    const largest = MAX_VOLUME_BYTES - 8;
    const lengths = [
      8,
      (TWO_16 - 1) * 8,
      // 512 KiB: the low half of length / 8 is 0, which must not read as a dead slot.
      TWO_16 * 8,
      (TWO_16 + 1) * 8,
      2 * TWO_16 * 8,
      64 * 2 ** 20, // --max-body's default
      2 ** 31, // a 2 GiB upload
      largest,
    ];
    lengths.forEach((length, i) => {
      map.set(i + 1, at(largest - i * 8, length, i));
    });
    map.assertConsistent();
    expect(map.size).toBe(lengths.length);
    lengths.forEach((length, i) => {
      expect(map.get(i + 1)).toEqual(at(largest - i * 8, length, i));
    });
    expect(sortedEntries(map).map(([, value]) => value.length)).toEqual(lengths);
    // Updates between small and large lengths, and a delete of the 512 KiB one.
    map.set(1, at(0, TWO_16 * 8));
    map.set(2, at(0, 8));
    expect(map.get(1)).toEqual(at(0, TWO_16 * 8));
    expect(map.get(2)).toEqual(at(0, 8));
    expect(map.delete(3)).toBe(true);
    expect(map.delete(3)).toBe(false);
    expect(map.get(3)).toBeUndefined();
    // Sweeps keep every live large needle.
    for (const key of [5, 6]) expect(map.delete(key)).toBe(true);
    map.assertConsistent();
    expect(map.size).toBe(lengths.length - 3);
    expect(map.get(1)).toEqual(at(0, TWO_16 * 8));
    expect(map.get(8)).toEqual(at(largest - 7 * 8, largest, 7));
    // One past the largest volume, or off the 8-byte grid, is refused before anything changes.
    for (const location of [
      at(MAX_VOLUME_BYTES),
      at(8, MAX_VOLUME_BYTES),
      at(largest - 4),
      at(8, TWO_16 * 8 + 4),
      at(8, largest + 4),
    ]) {
      expect(() => map.set(100, location)).toThrow(RangeError);
    }
    expect(map.get(100)).toBeUndefined();
    expect(map.size).toBe(lengths.length - 3);
    map.assertConsistent();
  });

  it('keeps a volume per chunk until a second one arrives, and a volume per slot after', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 8 });
    // Volume 1 fills up at key 12, volume 2 takes over: the chunk of keys 9..16 holds both.
    for (let key = 1; key <= 24; key++) map.set(key, at(key * 8, 48, key <= 12 ? 1 : 2));
    expect(map.byteLength).toBe(3 * 8 * SLOT + 8 * PLANE);
    // A late key of volume 1 lands in a chunk of volume 2, and one of volume 3 past the end.
    map.set(25, at(8, 48, 3));
    map.delete(20);
    map.set(20, at(160, 48, 1));
    for (let key = 1; key <= 25; key++) {
      const volume = key === 20 ? 1 : key === 25 ? 3 : key <= 12 ? 1 : 2;
      expect(map.get(key)?.volume).toBe(volume);
    }
    // Splits and merges move slots between chunks with and without a volume plane.
    for (const key of [0.5, 1.5].map((f) => Math.floor(f * 10))) map.set(key + 100, at(8, 48, 4));
    for (let key = 1; key <= 25; key += 2) map.delete(key);
    map.assertConsistent();
    for (let key = 2; key <= 24; key += 2) {
      const volume = key === 20 ? 1 : key <= 12 ? 1 : 2;
      expect(map.get(key)?.volume).toBe(volume);
    }
    expect(map.get(105)?.volume).toBe(4);
    expect(map.get(115)?.volume).toBe(4);
  });

  it('inserts out-of-order keys at the tail, across chunk boundaries', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 4 });
    // Keys 1..40 set in groups where the first key of each group of 3 comes last.
    const order: number[] = [];
    for (let key = 1; key <= 40; key += 3) order.push(key + 1, key + 2, key);
    for (const key of order) {
      map.set(key, at(key * 8));
      map.assertConsistent();
    }
    for (const key of order) expect(map.get(key)).toEqual(at(key * 8));
    expect(map.size).toBe(order.length);
    expect([...map.entries()].map(([key]) => key)).toEqual([...order].sort((a, b) => a - b));
  });

  it('fills every chunk but the last when late keys arrive at the tail', () => {
    for (const capacity of [4, 8, 64, 8192]) {
      const map = new PackedNeedleMap({ chunkCapacity: capacity });
      const next = random(capacity);
      const count = 200_000;
      const late: number[] = [];
      for (let key = 1; key <= count; key++) {
        // Keys published up to 40 places late, as concurrent writes do.
        if (next() < 0.2) late.push(key);
        else map.set(key, at(key * 8));
        while (late.length > 0 && (next() < 0.3 || late.length > 40 || key === count)) {
          const k = late.splice(Math.floor(next() * late.length), 1)[0] as number;
          map.set(k, at(k * 8));
        }
      }
      map.assertConsistent();
      expect(map.size).toBe(count);
      // Splits may leave a few chunks part-full; never many (tiny chunks are the worst case).
      const slack = capacity < 64 ? 1.15 : 1.02;
      expect(map.byteLength / SLOT).toBeLessThanOrEqual(count * slack + 2 * capacity);
      const keys = [...map.entries()].map(([key]) => key);
      expect(keys.length).toBe(count);
      expect(keys.every((key, i) => key === i + 1)).toBe(true);
    }
  });

  it('splits full chunks for keys far out of order, and inserts below the first key', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 4 });
    for (let key = 100; key < 200; key += 2) map.set(key, at(key * 8));
    // Every odd key in between, from the top down, then keys below everything.
    for (let key = 199; key > 100; key -= 2) {
      map.set(key, at(key * 8));
      map.assertConsistent();
    }
    for (let key = 99; key >= 1; key -= 7) {
      map.set(key, at(key * 8));
      map.assertConsistent();
    }
    const keys = [...map.entries()].map(([key]) => key);
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    expect(map.size).toBe(100 + 15);
    for (let key = 100; key < 200; key++) expect(map.get(key)).toEqual(at(key * 8));
  });

  it('sweeps out dead slots, drops empty chunks and merges underfull ones', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 8 });
    for (let key = 1; key <= 800; key++) map.set(key, at(key * 8));
    const full = map.byteLength;
    // Delete 7 keys out of 8: chunks shrink and merge.
    for (let key = 1; key <= 800; key++) {
      if (key % 8 !== 0) expect(map.delete(key)).toBe(true);
    }
    map.assertConsistent();
    expect(map.size).toBe(100);
    expect(map.byteLength).toBeLessThan(full / 2);
    for (let key = 1; key <= 800; key++) {
      expect(map.get(key)).toEqual(key % 8 === 0 ? at(key * 8) : undefined);
    }
    for (let key = 8; key <= 800; key += 8) map.delete(key);
    map.assertConsistent();
    expect(map.size).toBe(0);
    expect(map.byteLength).toBe(0);
    // And it still works afterwards.
    map.set(5, at(40));
    map.set(3, at(24));
    expect([...map.entries()]).toEqual([
      [3, at(24)],
      [5, at(40)],
    ]);
  });

  it('iterates while the map changes, as a Map would', () => {
    const map = new PackedNeedleMap({ chunkCapacity: 4 });
    for (let key = 10; key <= 100; key += 10) map.set(key, at(key * 8));
    const seen: number[] = [];
    for (const [key] of map.entries()) {
      seen.push(key);
      if (key === 20) {
        map.delete(30); // not yet visited: skipped
        map.delete(10); // visited
        map.set(25, at(200)); // after the current key: visited
        map.set(5, at(40)); // before it: not visited
      }
      if (key === 50) {
        for (let k = 1; k < 50; k++) map.delete(k); // sweeps and merges the chunks behind
        map.set(55, at(440));
      }
      if (key === 80) map.set(1000, at(8000)); // a new largest key: visited
    }
    expect(seen).toEqual([10, 20, 25, 40, 50, 55, 60, 70, 80, 90, 100, 1000]);
    map.assertConsistent();
  });

  it('is iterable directly', () => {
    const map = new PackedNeedleMap();
    map.set(1, at(8));
    expect([...map]).toEqual([[1, at(8)]]);
  });

  it('validates its chunk capacity', () => {
    expect(() => new PackedNeedleMap({ chunkCapacity: 1 })).toThrow(RangeError);
    expect(() => new PackedNeedleMap({ chunkCapacity: 2.5 })).toThrow(RangeError);
  });

  describe('behaves like MapNeedleMap under random operations', () => {
    const cases: Array<{ seed: number; chunkCapacity: number; ops: number }> = [
      { seed: 1, chunkCapacity: 2, ops: 20_000 },
      { seed: 2, chunkCapacity: 3, ops: 20_000 },
      { seed: 3, chunkCapacity: 4, ops: 30_000 },
      { seed: 4, chunkCapacity: 16, ops: 50_000 },
      { seed: 5, chunkCapacity: 64, ops: 100_000 },
      { seed: 6, chunkCapacity: 8192, ops: 100_000 },
    ];
    for (const { seed, chunkCapacity, ops } of cases) {
      it(`seed ${seed}, ${chunkCapacity} slots per chunk, ${ops} operations`, () => {
        differential(seed, chunkCapacity, ops, 'any');
      });
    }
  });

  describe('behaves like MapNeedleMap with the locations a store sets (narrow, widened rarely)', () => {
    const cases: Array<{ seed: number; chunkCapacity: number; ops: number }> = [
      { seed: 21, chunkCapacity: 2, ops: 20_000 },
      { seed: 22, chunkCapacity: 5, ops: 30_000 },
      { seed: 23, chunkCapacity: 16, ops: 50_000 },
      { seed: 24, chunkCapacity: 128, ops: 100_000 },
      { seed: 25, chunkCapacity: 8192, ops: 100_000 },
    ];
    for (const { seed, chunkCapacity, ops } of cases) {
      it(`seed ${seed}, ${chunkCapacity} slots per chunk, ${ops} operations`, () => {
        differential(seed, chunkCapacity, ops, 'store');
      });
    }
  });

  describe('iterates consistently while random changes happen', () => {
    for (const [seed, chunkCapacity] of [
      [11, 2],
      [12, 4],
      [13, 32],
    ] as const) {
      it(`seed ${seed}, ${chunkCapacity} slots per chunk`, () => {
        iterateWhileChanging(seed, chunkCapacity);
      });
    }
  });

  it('holds more than 2^24 needles (a Map cannot), built in increasing key order', () => {
    const count = 2 ** 24 + 1000;
    const map = new PackedNeedleMap();
    const started = performance.now();
    const set = (key: number) =>
      map.set(key, {
        volume: 1 + Math.floor(key / 2 ** 22),
        offset: (key % 2 ** 28) * 8,
        length: 1064,
      });
    for (let key = 1; key <= count; key++) {
      // Every 64th pair is published in reverse order (with 8192 slots per chunk, the late key
      // often finds its chunk full).
      if (key % 64 === 0 && key < count) {
        set(key + 1);
        set(key++);
      } else set(key);
    }
    const buildMs = performance.now() - started;
    expect(map.size).toBe(count);
    // 8 bytes per needle, less than one chunk of slack, and a volume plane for each of the few
    // chunks where the volume changes.
    expect(map.byteLength).toBeLessThan(count * SLOT + 8192 * SLOT + 5 * 8192 * PLANE);
    expect(map.get(count)?.length).toBe(1064);
    expect(map.get(count + 1)).toBeUndefined();
    expect(map.get(2 ** 24 + 1)).toMatchObject({ volume: 5, length: 1064 });
    const next = random(7);
    for (let i = 0; i < 100_000; i++) {
      const key = 1 + Math.floor(next() * count);
      expect(map.get(key)?.volume).toBe(1 + Math.floor(key / 2 ** 22));
    }
    // A few late out-of-order keys land between existing ones without harm.
    expect(map.delete(2 ** 23)).toBe(true);
    map.set(2 ** 23, at(8));
    expect(map.get(2 ** 23)).toEqual(at(8));
    expect(map.size).toBe(count);
    // Informative only: tests check behaviour, `npm run bench:index` measures speed.
    console.log(`${count} increasing sets in ${buildMs.toFixed(0)} ms`);
  }, 120_000);
});

/**
 * Random interleavings of set, delete and get, mostly with increasing keys, checked against
 * MapNeedleMap after every operation and fully (entries, invariants) every so often.
 */
/**
 * `any`: every field anywhere in its range (every chunk needs every plane). `store`: what a store
 * sets, one volume at a time that changes now and then, needles mostly under 512 KiB, keys mostly
 * dense with gaps past 2^16 now and then, so chunks are narrow and widen at random moments.
 */
function differential(
  seed: number,
  chunkCapacity: number,
  ops: number,
  fields: 'any' | 'store',
): void {
  const next = random(seed);
  const int = (n: number) => Math.floor(next() * n);
  const packed = new PackedNeedleMap({ chunkCapacity });
  const reference = new MapNeedleMap();
  const used: number[] = []; // every key ever set, for updates, deletes and gets
  let maxKey = int(3) === 0 ? TWO_32 - 50 : 0; // sometimes start just below a 2^32 boundary
  const reserved: number[] = []; // keys handed out but not yet set (concurrent writes)

  let volume = 1;
  const location = (): NeedleLocation => {
    if (fields === 'any') {
      return { volume: 1 + int(4), offset: int(TWO_32) * 8, length: (1 + int(TWO_32 - 1)) * 8 };
    }
    if (next() < 0.002) volume++;
    const roll = next();
    const units =
      roll < 0.97
        ? 1 + int(TWO_16 - 1)
        : roll < 0.99
          ? TWO_16 * (1 + int(3)) + int(2) - 1
          : 1 + int(TWO_32 - 1);
    return {
      volume: next() < 0.01 ? 1 + int(volume) : volume,
      offset: int(TWO_32) * 8,
      length: units * 8,
    };
  };
  const pick = () => used[int(used.length)] as number;
  const checkEvery = Math.max(500, Math.floor(ops / 25));

  for (let op = 0; op < ops; op++) {
    const roll = next();
    let key: number;
    if (roll < 0.4) {
      // The usual write: the next key, sometimes after a gap, sometimes after a huge gap.
      const gap =
        next() < 0.9
          ? 1
          : next() < 0.95
            ? 2 + int(100)
            : fields === 'store' && next() < 0.8
              ? TWO_16 - 2 + int(4)
              : 2 ** 32 + int(1000);
      key = Math.min(maxKey + gap, MAX_KEY);
      maxKey = key;
      if (next() < 0.15) {
        // Reserved now, published later: an out-of-order set.
        reserved.push(key);
        continue;
      }
      setBoth(key);
    } else if (roll < 0.5 && reserved.length > 0) {
      key = reserved.splice(int(reserved.length), 1)[0] as number;
      setBoth(key);
    } else if (roll < 0.53) {
      // Far out of order: anywhere below the largest key, or even below everything.
      key = next() < 0.1 ? int(5) : int(maxKey + 1);
      setBoth(key);
    } else if (roll < 0.58 && used.length > 0) {
      setBoth(pick()); // update or revive
    } else if (roll < 0.8 && used.length > 0) {
      key = next() < 0.8 ? pick() : int(maxKey + 2);
      expect(packed.delete(key)).toBe(reference.delete(key));
    } else {
      key = used.length > 0 && next() < 0.8 ? pick() : int(maxKey + 2);
      const [got, want] = [packed.get(key), reference.get(key)];
      if (!(got === want || (got && want && sameLocation(got, want)))) {
        expect({ op, key, got }).toEqual({ op, key, got: want });
      }
    }
    if (packed.size !== reference.size) {
      throw new Error(`op ${op}: size ${packed.size}, expected ${reference.size}`);
    }
    if (op % checkEvery === 0 || op === ops - 1) {
      packed.assertConsistent();
      sameEntries(op);
    }
  }
  for (const key of used) expect(packed.get(key)).toEqual(reference.get(key));

  function sameEntries(op: number): void {
    const expected = sortedEntries(reference);
    let i = 0;
    for (const [key, value] of packed.entries()) {
      const want = expected[i++];
      if (!want || want[0] !== key || !sameLocation(want[1], value)) {
        throw new Error(`op ${op}: entry ${i - 1} is ${key}, expected ${want?.[0]}`);
      }
    }
    if (i !== expected.length)
      throw new Error(`op ${op}: ${i} entries, expected ${expected.length}`);
  }

  function setBoth(key: number): void {
    const value = location();
    packed.set(key, value);
    reference.set(key, value);
    used.push(key);
  }
}

/**
 * Iterates while random sets and deletes happen between steps. What a Map guarantees, in key
 * order: keys come out increasing and once each, each one live when it comes out, and every key
 * live from start to end (never deleted meanwhile) comes out.
 */
function iterateWhileChanging(seed: number, chunkCapacity: number): void {
  const next = random(seed);
  const int = (n: number) => Math.floor(next() * n);
  for (let round = 0; round < 40; round++) {
    const map = new PackedNeedleMap({ chunkCapacity });
    const keys = new Set<number>();
    let maxKey = 0;
    for (let i = 0; i < 200; i++) {
      maxKey += 1 + (next() < 0.1 ? int(5) : 0);
      map.set(maxKey, at(maxKey * 8));
      keys.add(maxKey);
    }
    const stable = new Set(keys);
    let previous = -1;
    const seen = new Set<number>();
    for (const [key, value] of map.entries()) {
      expect(key).toBeGreaterThan(previous);
      expect(keys.has(key)).toBe(true);
      expect(value).toEqual(at(key * 8));
      previous = key;
      seen.add(key);
      for (let change = int(4); change > 0; change--) {
        const roll = next();
        if (roll < 0.45) {
          const victim = int(maxKey + 1);
          map.delete(victim);
          keys.delete(victim);
          stable.delete(victim);
        } else if (roll < 0.75) {
          maxKey += 1;
          map.set(maxKey, at(maxKey * 8));
          keys.add(maxKey);
        } else {
          const late = int(maxKey + 1);
          map.set(late, at(late * 8));
          keys.add(late);
        }
      }
    }
    for (const key of stable) expect(seen.has(key)).toBe(true);
    map.assertConsistent();
    expect(map.size).toBe(keys.size);
  }
}
