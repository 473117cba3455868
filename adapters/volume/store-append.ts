import { isStoreError, StoreError } from '../../storage/index.ts';
import { mostlyGarbage } from './accounting.ts';
import { volumePath } from './data-dir.ts';
import { type IndexEntry, MAX_VOLUME_BYTES } from './index-file.ts';
import { loadVolume } from './load.ts';
import { diskError } from './store-errors.ts';
import type { StoreState } from './store-state.ts';
import type { Slot, Volume } from './volume.ts';
import { SUPERBLOCK_SIZE, VolumeFile } from './volume-file.ts';

/** Space handed to one write in a volume. */
export interface Reserved {
  volume: Volume;
  slot: Slot;
}

/** Appends whole needles, waits until they are durable, then makes them visible. */
export async function append(
  state: StoreState,
  buffers: Buffer[],
  entries: (offset: number) => IndexEntry[],
): Promise<{ volume: Volume; offset: number }> {
  const { volume, slot } = await reserve(
    state,
    buffers.reduce((total, b) => total + b.byteLength, 0),
  );
  try {
    await volume.write(slot, buffers).catch((err: unknown) => {
      throw diskError(err);
    });
    await state.durability.durable(volume);
  } catch (err) {
    await abandon(state, volume, slot);
    throw err;
  }
  publish(state, volume, slot, entries(slot.offset));
  return { volume, offset: slot.offset };
}

/** A write failed: its space is given back, or stays behind as a hole counted as garbage. */
export async function abandon(state: StoreState, volume: Volume, slot: Slot): Promise<void> {
  if (!(await volume.abandon(slot))) return;
  state.live.hole(volume.id, slot.length);
  state.garbageGrew();
}

/** The write is durable: update the map, then queue its index entries in volume order. */
export function publish(
  state: StoreState,
  volume: Volume,
  slot: Slot,
  entries: IndexEntry[],
): void {
  for (const { key, offset, length } of entries) {
    state.live.apply(volume.id, key, offset, length);
    // A tombstone (delete or replace): the file must never be answered from the cache again.
    if (length === 0) state.cache.delete(key);
  }
  volume.complete(slot, entries);
}

/** Writes part of a slot (a large upload, piece by piece). */
export async function writeTo(volume: Volume, buffers: Buffer[], position: number): Promise<void> {
  try {
    await volume.file.write(buffers, position);
  } catch (err) {
    throw diskError(err);
  }
}

/** Appends go to the writable volume as it stands: no roll-over, reclaim or pause under way. */
export function appendsSettled(state: StoreState): boolean {
  return !(state.appendsPaused || state.rollingOver || state.reclaiming || state.writable.readOnly);
}

/**
 * Space for `length` bytes in the writable volume. When it is full, a new volume is started,
 * unless the full one is mostly garbage: then it is compacted in place first.
 */
export async function reserve(state: StoreState, length: number): Promise<Reserved> {
  if (length > MAX_VOLUME_BYTES - SUPERBLOCK_SIZE) {
    throw new StoreError('too_large', `a file this large does not fit in a volume`);
  }
  let reclaimed = false;
  for (;;) {
    if (state.appendsPaused) {
      await state.appendsPaused;
      continue;
    }
    const volume = state.writable;
    // An empty volume takes any needle, so a file larger than the volume size still fits.
    const fits =
      volume.tail === SUPERBLOCK_SIZE || volume.tail + length <= state.settings.volumeSize;
    if (fits && !volume.readOnly) {
      return { volume, slot: volume.reserve(length) };
    }
    if (
      !reclaimed &&
      !volume.readOnly &&
      mostlyGarbage(volume, state.streaming.pendingIn(volume))
    ) {
      reclaimed = true;
      await reclaimInPlace(state, volume);
      continue;
    }
    await rollOver(state);
  }
}

/** A new writable volume, started once for every write waiting on it. */
export function rollOver(state: StoreState): Promise<void> {
  state.rollingOver ??= startVolume(state).finally(() => {
    state.rollingOver = undefined;
  });
  return state.rollingOver;
}

async function startVolume(state: StoreState): Promise<void> {
  const { dir } = state.settings;
  const id = state.writable.id + 1;
  const file = await VolumeFile.create(volumePath(dir, id), id).catch((err: unknown) => {
    throw diskError(err);
  });
  const { volume } = await loadVolume(dir, file, state.live, state.telemetry);
  const sealed = state.writable;
  state.volumes.set(id, volume);
  state.writable = volume;
  presizeWritable(state);
  // In the background: writes still under way in the sealed volume finish first.
  void sealed.seal();
}

/** The writable volume writes zeros ahead of its tail, if the settings want them. */
export function presizeWritable(state: StoreState): void {
  const { presizeStep, volumeSize, readOnly } = state.settings;
  if (presizeStep > 0 && !readOnly) {
    state.writable.presize({ step: presizeStep, limit: volumeSize });
  }
}

/**
 * Compacts the full writable volume in place, once for every write waiting on it. If that
 * fails (a full disk, say), they go on to a new volume.
 */
function reclaimInPlace(state: StoreState, volume: Volume): Promise<void> {
  const { log } = state.settings;
  state.reclaiming ??= state
    .compact(volume.id)
    .then(
      (reports) => {
        for (const { reclaimedBytes, bytesAfter } of reports) {
          log(
            `volume ${volume.id}: full but mostly garbage, compacted in place (${reclaimedBytes} bytes reclaimed, ${bytesAfter} kept) instead of starting a new volume`,
          );
        }
      },
      (err: unknown) => {
        if (isStoreError(err, 'closed')) return;
        const reason = err instanceof Error ? err.message : String(err);
        log(`volume ${volume.id}: compaction in place failed (${reason}), rolling over`);
      },
    )
    .finally(() => {
      state.reclaiming = undefined;
    });
  return state.reclaiming;
}
