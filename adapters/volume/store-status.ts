import type { StoreStatus } from '../../storage/index.ts';
import { garbageRatio, ratio } from './accounting.ts';
import type { StoreState } from './store-state.ts';
import type { Volume } from './volume.ts';

/** Per volume and in total: bytes, live and deleted needles, garbage; the next key; the bound. */
export function storeStatus(state: StoreState): StoreStatus {
  const volumes = [...state.volumes.values()].map((volume) => {
    const { liveNeedles, liveBytes, deletedNeedles, garbageBytes } = volume.counts;
    return {
      id: volume.id,
      bytes: volume.tail,
      liveNeedles,
      deletedNeedles,
      liveBytes,
      // Deleted and replaced files and holes; not tombstones, which may retire keys elsewhere.
      garbageBytes,
      garbageRatio: garbageRatio(volume),
      sealed: sealed(state, volume),
      readOnly: volume.readOnly,
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
    volumeSize: state.settings.volumeSize,
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
