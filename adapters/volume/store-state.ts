import type { CompactReport } from '../../storage/index.ts';
import type { TelemetryHub } from '../telemetry-hub.ts';
import type { LiveSet } from './accounting.ts';
import type { Durability } from './durability.ts';
import type { NeedleCache } from './needle-cache.ts';
import { closed, noVolume, readOnlyServer } from './store-errors.ts';
import type { StoreSettings } from './store-options.ts';
import type { StreamingBudget } from './streaming-budget.ts';
import type { Volume } from './volume.ts';

/**
 * What the store's modules share, private to the adapter: the facade (`VolumeStore`) owns it and
 * hands it to the read, write, compaction and status modules.
 */
export interface StoreState {
  readonly settings: StoreSettings;
  /** The needle map, each volume's accounting, the highest key seen. */
  readonly live: LiveSet;
  readonly volumes: Map<number, Volume>;
  readonly durability: Durability;
  readonly streaming: StreamingBudget;
  /** Small files recently written or read, verified: see needle-cache.ts. */
  readonly cache: NeedleCache;
  /** Who is told of flushes, corrupt reads and compactions (`capabilities.telemetry`). */
  readonly telemetry: TelemetryHub;
  /** The volume that takes appends: the newest. Older ones take no more appends. */
  writable: Volume;
  nextKey: number;
  /** A new writable volume being created because the current one is full. */
  rollingOver: Promise<void> | undefined;
  /** The full writable volume being compacted in place rather than rolled over. */
  reclaiming: Promise<void> | undefined;
  /** Set while the writable volume is compacted in place: appends wait for it. */
  appendsPaused: Promise<void> | undefined;
  closing: Promise<void> | undefined;
  /** The store's own compaction, one at a time and tracked (the facade's `compact`). */
  compact(id: number): Promise<CompactReport[]>;
  /** Garbage grew (a delete, a replace, a hole): automatic compaction may want to run. */
  garbageGrew(): void;
}

/** Writes are refused while closing, on a read-only server, and after a failed flush. */
export function assertWritable(state: StoreState): void {
  if (state.closing) throw closed();
  if (state.settings.readOnly) throw readOnlyServer();
  state.durability.assertHealthy();
}

/** The volume with this id, or `not_found` (an operator named it). */
export function volumeById(state: StoreState, id: number): Volume {
  const volume = state.volumes.get(id);
  if (!volume) throw noVolume(id);
  return volume;
}
