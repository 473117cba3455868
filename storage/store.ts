import type {
  ByteRange,
  CompactReport,
  FileInfo,
  FileRead,
  Key,
  PutInput,
  StoreStatus,
  SyncReport,
  VolumeStatus,
} from './types.ts';

/**
 * Whether a store takes writes now: what `GET /readyz` answers, for load balancers. Not ready
 * while it is read-only, closing or closed, or refusing writes after a failed flush; `reason`
 * says which, for people.
 */
export type Readiness = { ready: true } | { ready: false; reason: string };

/**
 * The storage port: all the HTTP handlers know of a store. Adapters implement it; every method
 * reports failure by rejecting with a `StoreError`.
 *
 * A write (put, replace, delete) resolves only once it is durable under the adapter's settings.
 */
export interface BlobStore {
  /** Stores a new file under a new key. */
  put(input: PutInput): Promise<FileInfo>;
  /**
   * Reads a live file, or the given range of it. With a `cookie`, a file whose cookie differs is
   * `not_found`, as if it did not exist (strangers cannot walk the key space); so for all below.
   * A read may carry `release` (see `FileRead`): its bytes are lent, to be given back once sent.
   */
  get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead>;
  /** What `get` would answer, without the bytes. */
  head(key: Key, cookie?: number): Promise<FileInfo>;
  /** Stores new content under a new key and retires the old key for good. */
  replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo>;
  /** Retires a key for good. */
  delete(key: Key, cookie?: number): Promise<void>;
  /** Flushes every volume and index to disk. */
  sync(): Promise<SyncReport>;
  status(): Promise<StoreStatus>;
  /** Whether it is open and takes writes (see `Readiness`). Cheap: probes ask every second. */
  readiness(): Promise<Readiness>;
  /** Flushes, syncs and releases the store; later calls reject with `closed`. */
  close(): Promise<void>;

  /**
   * What this store offers beyond the file operations, as abstract-level's `supports` manifest
   * or tus's `extensions`: read once, when the app is built, never per request.
   */
  readonly capabilities: StoreCapabilities;
}

/** A store's optional parts; an absent one is not offered. */
export interface StoreCapabilities {
  /** Operator calls of a store made of volumes. */
  readonly volumes?: VolumeAdmin;
  /** Storing a file under a key and cookie the caller chose: how a cluster writes replicas. */
  readonly replicas?: ReplicaWriter;
  /** What a metrics registry can learn of the store's inner work (see handlers/metrics). */
  readonly telemetry?: StoreTelemetry;
}

/**
 * The store's inner events and counters, for metrics. Events are pushed to observers as they
 * happen (each call is cheap and must not throw); counters that change on every read (the
 * cache's) are read when scraped, never pushed.
 */
export interface StoreTelemetry {
  /** Calls `observer` on every event from now on; the answer stops that. */
  observe(observer: StoreObserver): () => void;
  /** The cache's counters, when the store has a cache (its size may be 0: off). */
  cacheStats?(): CacheStats;
}

export interface StoreObserver {
  /** A group commit made `writes` writes durable with one flush, which took `seconds`. */
  flushed?(writes: number, seconds: number): void;
  /** A read found the needle in `volume` damaged and answered `corrupt`. */
  corruptRead?(volume: number): void;
  /** A compaction of one volume finished. */
  compacted?(report: CompactReport): void;
}

/** The needle cache's counters, since the store opened. */
export interface CacheStats {
  hits: number;
  misses: number;
  /** Bytes counted against `maxBytes`: every entry's data and its per-entry overhead. */
  bytes: number;
  entries: number;
  maxBytes: number;
}

/**
 * The write side of a replica: the key and cookie come from the caller (a cluster's gateway,
 * which took the key from a range the Directory leased it), not from the store.
 */
export interface ReplicaWriter {
  /**
   * Stores `input` under `key` with `cookie`, durably as `put` does. A retry with the same key,
   * cookie, content type and bytes answers the stored file again and stores nothing twice; the
   * same key with anything else is `conflict`, and the file under it stays as it was. The store's
   * own `put` hands out keys above every key stored this way. Whether a key this store has
   * retired may be stored again is the caller's to prevent (the cluster's Directory records
   * deletes), as not every adapter remembers retired keys.
   */
  putReplica(key: Key, cookie: number, input: PutInput): Promise<FileInfo>;
  /**
   * Up to `limit` live keys above `after`, increasing: how a node pages through a replica (to
   * compare it with another, or to catch up).
   */
  listKeys(after: Key, limit: number): Promise<Key[]>;
}

/**
 * A store node's replicas: one store per logical volume it holds, each a store of its own (the
 * volume adapter, in its own folder). What the node's internal API (handlers/replica-routes.ts)
 * serves.
 */
export interface ReplicaVolumes {
  /**
   * The replica of logical volume `volume`, opened on first use. With `create`, a replica this
   * node does not have yet is made, if the cluster names this node one of its replicas;
   * otherwise (and without `create`) it is `not_found`.
   */
  replica(volume: number, options?: { create?: boolean }): Promise<BlobStore>;
  /** Syncs every open replica. */
  sync(): Promise<SyncReport>;
  /** Every open replica's status, by logical volume. */
  status(): Promise<ReplicaStatus[]>;
}

export interface ReplicaStatus extends StoreStatus {
  /** The logical volume. */
  volume: number;
}

/** The operator calls of a store made of volumes (the Haystack store's own). */
export interface VolumeAdmin {
  /**
   * Rewrites volumes without their deleted and replaced needles while the store keeps serving:
   * every volume that has garbage, or the one named.
   */
  compact(volume?: number): Promise<CompactReport[]>;
  /** Stops appends to a volume for good; answers its status. */
  setVolumeReadOnly(volume: number): Promise<VolumeStatus>;
}
