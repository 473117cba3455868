import {
  type BlobStore,
  type ByteRange,
  type CacheStats,
  type CompactReport,
  type FileInfo,
  type FileRead,
  type Key,
  type PutInput,
  type Readiness,
  type StoreCapabilities,
  StoreError,
  type StoreStatus,
  type SyncReport,
  type VolumeStatus,
} from '../../storage/index.ts';
import { TelemetryHub } from '../telemetry-hub.ts';
import { AutoCompactor } from './auto-compact.ts';
import { Durability } from './durability.ts';
import { ingest } from './ingest.ts';
import { KeyLock } from './key-lock.ts';
import type { DirectoryLock } from './lock.ts';
import { tombstone } from './needle.ts';
import { NeedleCache } from './needle-cache.ts';
import { markReadOnly } from './read-only-marker.ts';
import { listKeys, putReplica } from './replica-write.ts';
import { append, presizeWritable } from './store-append.ts';
import { compactVolumes } from './store-compact.ts';
import { closed } from './store-errors.ts';
import { type StoreSettings, storeSettings, type VolumeStoreOptions } from './store-options.ts';
import { headFile, locateFile, readFile } from './store-read.ts';
import { assertWritable, type StoreState, volumeById } from './store-state.ts';
import { sealedWithMostGarbage, storeStatus } from './store-status.ts';
import { StreamingBudget } from './streaming-budget.ts';
import { closeVolume, type OpenedDir, openDataDir } from './volume-open.ts';

export { DEFAULT_VOLUME_SIZE, type FsyncMode, type VolumeStoreOptions } from './store-options.ts';

/**
 * The file-backed volume adapter of the storage port: a facade over the modules that do the
 * work (volume-open, store-read, ingest, store-append, store-compact, store-status,
 * replica-write, durability). It owns the shared state, runs each operation tracked (so `close`
 * can wait for it) and serialises what must not interleave: writes that look at a key first,
 * one compaction at a time.
 */
export class VolumeStore implements BlobStore {
  /**
   * Its operator calls are its own `compact` and `setVolumeReadOnly`; replica writes too; and
   * telemetry: flushes, corrupt reads, compactions, the cache's counters.
   */
  readonly capabilities: StoreCapabilities = {
    volumes: this,
    replicas: {
      putReplica: (key, cookie, input) =>
        this.#track(() => putReplica(this.#state, this.#keys, key, cookie, input)),
      listKeys: (after, limit) => this.#track(async () => listKeys(this.#state, after, limit)),
    },
    telemetry: {
      observe: (observer) => this.#state.telemetry.observe(observer),
      cacheStats: () => this.cacheStats(),
    },
  };
  readonly #state: StoreState;
  readonly #lock: DirectoryLock;
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Writes that look at a key first (delete, replace, a replica write): one at a time per key. */
  readonly #keys = new KeyLock();
  #compacting: Promise<unknown> = Promise.resolve();
  readonly #autoCompactor: AutoCompactor | undefined;

  private constructor(settings: StoreSettings, opened: OpenedDir, telemetry: TelemetryHub) {
    this.#lock = opened.lock;
    this.#state = {
      settings,
      live: opened.live,
      volumes: opened.volumes,
      writable: opened.writable,
      nextKey: opened.live.maxKey + 1,
      durability: new Durability(settings.fsync),
      streaming: new StreamingBudget(settings.maxStreamingBytes),
      cache: new NeedleCache(settings.cacheSize),
      telemetry,
      rollingOver: undefined,
      reclaiming: undefined,
      appendsPaused: undefined,
      closing: undefined,
      compact: (id) => this.compact(id),
      garbageGrew: () => this.#autoCompactor?.poke(),
    };
    presizeWritable(this.#state);
    this.#autoCompactor =
      settings.compactAt === undefined
        ? undefined
        : new AutoCompactor(
            {
              mostGarbage: () => sealedWithMostGarbage(this.#state),
              compact: (id) => this.compact(id),
            },
            settings.compactAt,
            settings.log,
          );
  }

  static async open(options: VolumeStoreOptions): Promise<VolumeStore> {
    const settings = storeSettings(options);
    // Made first: the volumes opened tell it of their flushes.
    const telemetry = new TelemetryHub();
    const opened = await openDataDir(settings.dir, settings.log, telemetry);
    const store = new VolumeStore(settings, opened, telemetry);
    // Garbage found at start-up (holes of failed uploads included) counts like new garbage.
    store.#autoCompactor?.poke();
    return store;
  }

  put(input: PutInput): Promise<FileInfo> {
    return this.#track(() => ingest(this.#state, input, {}));
  }

  replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo> {
    return this.#track(() =>
      this.#keys.run(key, async () => {
        await locateFile(this.#state, key, cookie);
        const info = await ingest(this.#state, input, { retire: key });
        this.#state.garbageGrew();
        return info;
      }),
    );
  }

  delete(key: Key, cookie?: number): Promise<void> {
    return this.#track(() =>
      this.#keys.run(key, async () => {
        await locateFile(this.#state, key, cookie);
        assertWritable(this.#state);
        await append(this.#state, [tombstone(key)], (offset) => [{ key, offset, length: 0 }]);
        this.#state.garbageGrew();
      }),
    );
  }

  get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead> {
    return this.#track(() => readFile(this.#state, key, range, cookie));
  }

  head(key: Key, cookie?: number): Promise<FileInfo> {
    return this.#track(() => headFile(this.#state, key, cookie));
  }

  sync(): Promise<SyncReport> {
    return this.#track(() => this.#state.durability.syncAll(this.#state.volumes));
  }

  status(): Promise<StoreStatus> {
    return this.#track(async () => storeStatus(this.#state));
  }

  /** The cache's counters (hits, misses, bytes held, entries), for a metrics registry. */
  cacheStats(): CacheStats {
    return this.#state.cache.stats();
  }

  close(): Promise<void> {
    const state = this.#state;
    state.closing ??= (async () => {
      await Promise.allSettled(this.#inFlight);
      try {
        await state.durability.flushForClose(state.volumes);
      } finally {
        await Promise.allSettled([...state.volumes.values()].map(closeVolume));
        await this.#lock.release();
      }
    })();
    return state.closing;
  }

  /**
   * Rewrites volumes without their dead needles and holes (every volume with garbage, or the one
   * named) while reads and writes go on: see store-compact.ts.
   */
  compact(id?: number): Promise<CompactReport[]> {
    // One compaction at a time; close() waits for it like for any operation.
    const next = this.#compacting
      .catch(() => {})
      .then(() => this.#track(() => compactVolumes(this.#state, id)));
    this.#compacting = next;
    return next;
  }

  async readiness(): Promise<Readiness> {
    try {
      assertWritable(this.#state);
      return { ready: true };
    } catch (err) {
      if (err instanceof StoreError) return { ready: false, reason: err.message };
      throw err;
    }
  }

  setVolumeReadOnly(id: number): Promise<VolumeStatus> {
    return this.#track(async () => {
      assertWritable(this.#state);
      await markReadOnly(this.#state.settings.dir, volumeById(this.#state, id));
      const status = (await this.status()).volumes.find((v) => v.id === id);
      return status as VolumeStatus;
    });
  }

  /** Runs an operation unless the store is closing, and lets `close` wait for it. */
  #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#state.closing) return Promise.reject(closed());
    const promise = operation();
    this.#inFlight.add(promise);
    const forget = () => this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}

export function openVolumeStore(options: VolumeStoreOptions): Promise<VolumeStore> {
  return VolumeStore.open(options);
}
