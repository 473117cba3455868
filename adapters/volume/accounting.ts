import type { Move } from './compact.ts';
import type { NeedleMap } from './needle-map.ts';

/** One volume's accounting, as `/status` shows it and as compaction decides by it. */
export interface VolumeCounts {
  liveNeedles: number;
  liveBytes: number;
  deletedNeedles: number;
  /**
   * What compaction reclaims: bytes of this volume's file needles deleted or replaced since, and
   * space no needle holds (uploads that failed after reserving it, damaged regions).
   */
  garbageBytes: number;
}

/**
 * A writable volume that would have to make way for a new one while this share of it or more is
 * holes and deleted files (or uploads still arriving, which may yet fail) is compacted in place
 * instead: so volumes are only started for data that was really stored.
 */
export const COMPACT_IN_PLACE_SHARE = 0.5;

/**
 * The live set and the one place its accounting changes: the needle map (key to location), each
 * volume's counts, and the highest key seen (the next key must be above every key ever handed
 * out, deleted ones included). Loading, `reload`, every write and every compaction swap go
 * through it, so the counts always describe the map.
 */
export class LiveSet {
  readonly map: NeedleMap;
  readonly #counts = new Map<number, VolumeCounts>();
  maxKey = 0;

  constructor(map: NeedleMap) {
    this.map = map;
  }

  /** The volume's counts: one object per volume for good, so a `Volume` may hold it. */
  countsOf(volume: number): VolumeCounts {
    let counts = this.#counts.get(volume);
    if (!counts) {
      counts = { liveNeedles: 0, liveBytes: 0, deletedNeedles: 0, garbageBytes: 0 };
      this.#counts.set(volume, counts);
    }
    return counts;
  }

  /** Applies one index entry of `volume` (a file needle, or a tombstone when length is 0). */
  apply(volume: number, key: number, offset: number, length: number): void {
    this.sawKey(key);
    if (length === 0) {
      this.retire(key);
      return;
    }
    this.map.set(key, { volume, offset, length });
    const counts = this.countsOf(volume);
    counts.liveNeedles++;
    counts.liveBytes += length;
  }

  /** A key was used (a damaged needle whose header survived, say): never hand it out again. */
  sawKey(key: number): void {
    if (key > this.maxKey) this.maxKey = key;
  }

  /**
   * Bytes of `volume` that no needle holds: a failed upload's void needle, a damaged region, a
   * gap between index entries (which are only ever voids or damage). Garbage, like a deleted
   * file: compaction leaves it out.
   */
  hole(volume: number, length: number): void {
    this.countsOf(volume).garbageBytes += length;
  }

  /** The key's file is gone: its bytes become garbage of the volume that holds them. */
  retire(key: number): void {
    const location = this.map.get(key);
    if (!location) return;
    this.map.delete(key);
    const counts = this.countsOf(location.volume);
    counts.liveNeedles--;
    counts.liveBytes -= location.length;
    counts.deletedNeedles++;
    counts.garbageBytes += location.length;
  }

  /** The key's live file is the needle at this place (so a compaction keeps it). */
  holds(key: number, volume: number, offset: number): boolean {
    const location = this.map.get(key);
    return location?.volume === volume && location.offset === offset;
  }

  /**
   * A compacted copy of `volume` replaced it: keys still at their old place move to their copy,
   * and the volume is counted again from what was copied. A copied file whose key was retired
   * during the copy is garbage of the new volume (its tombstone lies in a newer one).
   */
  recount(volume: number, moves: readonly Move[]): void {
    const counts = this.countsOf(volume);
    counts.liveNeedles = 0;
    counts.liveBytes = 0;
    counts.deletedNeedles = 0;
    counts.garbageBytes = 0;
    for (const { key, from, to, length } of moves) {
      if (this.holds(key, volume, from)) {
        this.map.set(key, { volume, offset: to, length });
        counts.liveNeedles++;
        counts.liveBytes += length;
      } else {
        counts.deletedNeedles++;
        counts.garbageBytes += length;
      }
    }
  }
}

/** A volume as its accounting sees it: its counts and its bytes in use. */
interface Counted {
  readonly counts: VolumeCounts;
  readonly tail: number;
}

/** Garbage's share of a volume's bytes, 0 for an empty one. */
export function garbageRatio({ counts, tail }: Counted): number {
  return ratio(counts.garbageBytes, tail);
}

/**
 * Holes, deleted files and `pending` bytes (uploads still streaming in, which may yet fail and
 * leave holes) make up at least COMPACT_IN_PLACE_SHARE of the volume.
 */
export function mostlyGarbage({ counts, tail }: Counted, pending: number): boolean {
  return counts.garbageBytes + pending >= COMPACT_IN_PLACE_SHARE * tail;
}

export function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}
