import { describe, expect, it } from 'vitest';
import {
  garbageRatio,
  LiveSet,
  mostlyGarbage,
  type VolumeCounts,
} from '../../adapters/volume/accounting.ts';
import { MapNeedleMap } from '../../adapters/volume/needle-map.ts';

const counts = (
  liveNeedles: number,
  liveBytes: number,
  deletedNeedles: number,
  garbageBytes: number,
): VolumeCounts => ({ liveNeedles, liveBytes, deletedNeedles, garbageBytes });

describe('volume accounting (LiveSet)', () => {
  it('counts file needles as live and a tombstone moves its file to the deleted column', () => {
    const live = new LiveSet(new MapNeedleMap());
    live.apply(1, 1, 32, 48);
    live.apply(1, 2, 80, 64);
    expect(live.countsOf(1)).toEqual(counts(2, 112, 0, 0));
    live.apply(1, 1, 144, 0); // tombstone of key 1
    expect(live.countsOf(1)).toEqual(counts(1, 64, 1, 48));
    expect(live.map.get(1)).toBeUndefined();
    expect(live.map.get(2)).toEqual({ volume: 1, offset: 80, length: 64 });
  });

  it('charges a retired file to the volume that holds it, wherever its tombstone lies', () => {
    const live = new LiveSet(new MapNeedleMap());
    live.apply(1, 7, 32, 100);
    live.apply(2, 7, 32, 0); // the tombstone is appended to the newer volume
    expect(live.countsOf(1)).toEqual(counts(0, 0, 1, 100));
    expect(live.countsOf(2)).toEqual(counts(0, 0, 0, 0));
  });

  it('ignores a tombstone of a key it does not hold, and keeps its key', () => {
    const live = new LiveSet(new MapNeedleMap());
    live.apply(3, 9, 32, 0);
    expect(live.countsOf(3)).toEqual(counts(0, 0, 0, 0));
    expect(live.maxKey).toBe(9);
  });

  it('counts holes as garbage and remembers keys seen only in damaged needles', () => {
    const live = new LiveSet(new MapNeedleMap());
    live.apply(1, 5, 32, 48);
    live.hole(1, 4096);
    live.sawKey(40);
    live.sawKey(12);
    expect(live.countsOf(1)).toEqual(counts(1, 48, 0, 4096));
    expect(live.maxKey).toBe(40);
  });

  it('recounts a volume after a compaction swap from what was copied', () => {
    const live = new LiveSet(new MapNeedleMap());
    live.apply(1, 1, 32, 48);
    live.apply(1, 2, 80, 48);
    live.apply(1, 3, 128, 48);
    live.apply(1, 2, 176, 0); // deleted before the copy: not copied
    live.hole(1, 512);
    const held = live.countsOf(1);
    expect(live.holds(1, 1, 32)).toBe(true);
    expect(live.holds(1, 1, 80)).toBe(false);
    // Key 3 is deleted while the copy runs: its copy lands in the new volume, as garbage.
    live.apply(2, 3, 32, 0);
    live.recount(1, [
      { key: 1, from: 32, to: 32, length: 48 },
      { key: 3, from: 128, to: 80, length: 48 },
    ]);
    expect(live.countsOf(1)).toBe(held); // the Volume keeps its counts object
    expect(held).toEqual(counts(1, 48, 1, 48));
    expect(live.map.get(1)).toEqual({ volume: 1, offset: 32, length: 48 });
    expect(live.map.get(3)).toBeUndefined();
  });

  it('does not re-point a key whose file moved elsewhere during the copy', () => {
    const live = new LiveSet(new MapNeedleMap());
    live.apply(1, 4, 32, 48);
    live.apply(2, 4, 32, 64); // the key now lives in volume 2 (a replica write after a restart)
    live.recount(1, [{ key: 4, from: 32, to: 32, length: 48 }]);
    expect(live.map.get(4)).toEqual({ volume: 2, offset: 32, length: 64 });
    expect(live.countsOf(1)).toEqual(counts(0, 0, 1, 48));
  });
});

describe('garbage shares', () => {
  it('garbageRatio is dead bytes over the bytes in use, 0 for an empty volume', () => {
    expect(garbageRatio({ counts: counts(1, 10, 1, 30), tail: 120 })).toBe(0.25);
    expect(garbageRatio({ counts: counts(0, 0, 0, 0), tail: 0 })).toBe(0);
  });

  it('mostlyGarbage counts uploads still arriving with the garbage, from half the volume', () => {
    const volume = { counts: counts(1, 40, 1, 40), tail: 100 };
    expect(mostlyGarbage(volume, 0)).toBe(false);
    expect(mostlyGarbage(volume, 9)).toBe(false);
    expect(mostlyGarbage(volume, 10)).toBe(true);
  });
});
