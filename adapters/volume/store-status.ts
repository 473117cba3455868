import type { StoreStatus } from '../../storage/index.ts';
import type { StoreState } from './store-state.ts';
import type { Volume } from './volume.ts';

/**
 * A writable volume that would have to make way for a new one while this share of it or more is
 * holes and deleted files (or uploads still arriving, which may yet fail) is compacted in place
 * instead: so volumes are only started for data that was really stored.
 */
const COMPACT_IN_PLACE_SHARE = 0.5;

/** Per volume and in total: bytes, live and deleted needles, garbage; the next key. */
export function storeStatus(state: StoreState): StoreStatus {
  const volumes = [...state.volumes.values()].map((volume) => {
    const { liveNeedles, liveBytes, deletedNeedles, deadBytes } = volume.counts;
    return {
      id: volume.id,
      bytes: volume.tail,
      liveNeedles,
      deletedNeedles,
      liveBytes,
      // Deleted and replaced files and holes; not tombstones, which may retire keys elsewhere.
      garbageBytes: deadBytes,
      garbageRatio: garbageRatio(volume),
      readOnly: sealed(state, volume),
    };
  });
  const sum = (pick: (v: (typeof volumes)[number]) => number) =>
    volumes.reduce((total, v) => total + pick(v), 0);
  const bytes = sum((v) => v.bytes);
  const garbageBytes = sum((v) => v.garbageBytes);
  return {
    volumes,
    liveNeedles: sum((v) => v.liveNeedles),
    deletedNeedles: sum((v) => v.deletedNeedles),
    bytes,
    liveBytes: sum((v) => v.liveBytes),
    garbageBytes,
    garbageRatio: ratio(garbageBytes, bytes),
    nextKey: state.nextKey,
  };
}

/** Takes no more appends: marked read-only, or no longer the newest. */
export function sealed(state: StoreState, volume: Volume): boolean {
  return volume.readOnly || volume !== state.writable;
}

/** For automatic compaction: cheap enough to ask after every delete. */
export function sealedWithMostGarbage(
  state: StoreState,
): { id: number; garbageRatio: number } | undefined {
  let most: { id: number; garbageRatio: number } | undefined;
  for (const volume of state.volumes.values()) {
    if (!sealed(state, volume)) continue;
    const share = garbageRatio(volume);
    if (share > (most?.garbageRatio ?? 0)) most = { id: volume.id, garbageRatio: share };
  }
  return most;
}

/**
 * Holes, deleted files, and uploads still streaming in (which may yet fail and leave holes)
 * make up at least COMPACT_IN_PLACE_SHARE of the volume.
 */
export function mostlyGarbage(state: StoreState, volume: Volume): boolean {
  const pending = state.streaming.pendingIn(volume);
  return volume.counts.deadBytes + pending >= COMPACT_IN_PLACE_SHARE * volume.tail;
}

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

function garbageRatio(volume: Volume): number {
  return ratio(volume.counts.deadBytes, volume.tail);
}
