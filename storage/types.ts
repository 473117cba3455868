/** Keys are decimal integers from 1 to 2^53-1, handed out by the store, increasing, never reused. */
export type Key = number;

export const MAX_KEY = Number.MAX_SAFE_INTEGER;

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** Longest content type stored with a file, in bytes (printable ASCII, so bytes = characters). */
export const MAX_CONTENT_TYPE_LENGTH = 1024;

/**
 * What the store knows about one live file. Content under a key never changes.
 *
 * `volume` and `offset` are Haystack's facts: where the file's needle lies. They are for
 * operators and tools (a `verify` report, a look at a volume file), never for reading the file
 * back: clients name a file by key (and cookie) only. An adapter without volumes answers
 * volume 1 and offset 0; a cluster answers the logical volume and offset 0, as each replica holds
 * the needle at an offset of its own.
 */
export interface FileInfo {
  key: Key;
  /** Length of the file in bytes. */
  size: number;
  /** Which volume holds the file: 1 for adapters without volumes, the logical one in a cluster. */
  volume: number;
  /** Where the file's needle starts in its volume file: 0 for adapters without volumes and clusters. */
  offset: number;
  /** Random 32-bit number stored with the file; part of the ETag. */
  cookie: number;
  contentType: string;
  /** Strong entity tag, quoted as HTTP wants it. */
  etag: string;
}

/** Body of an upload: a stream (as `Request.body` gives it) or bytes already in memory. */
export type BodySource = ReadableStream<Uint8Array> | Uint8Array | null;

export interface PutInput {
  body: BodySource;
  /** Stored and returned on read; defaults to application/octet-stream. */
  contentType?: string;
  /**
   * Length the client declared (Content-Length), when it did. A body that ends early or runs
   * longer is refused with `bad_request` and nothing is stored.
   */
  length?: number;
  /** Largest body accepted; enforced while the bytes arrive (`too_large`, nothing stored). */
  limit?: number;
}

/** Inclusive byte range of a file, already checked against its size. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * What `get` answers. Its `info` and a buffered `body` are the store's and may be shared with
 * other reads (the volume adapter serves small files from a cache without copying them): read
 * them, never write into them. A store may freeze `info`, so that writing to it throws.
 */
export interface FileRead {
  readonly info: FileInfo;
  /**
   * The bytes (of the range, when one was asked). Small files come as one verified buffer. Large
   * ones stream; their checksum is checked as they stream and a mismatch errors the stream.
   */
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
  /**
   * Set by a store that reuses the buffer of a buffered `body` (the volume adapter's whole-file
   * reads of mid-size files): the bytes may be reused after this call, so call it once the
   * answer has been sent (the host let go of every byte), never before, and never read `body`
   * after. Calling it again does nothing. Never calling it is always safe: the store then
   * allocates a new buffer for a later read, as if it reused none.
   */
  readonly release?: () => void;
}

export interface SyncReport {
  /** Volumes whose data and index were flushed to disk. */
  volumes: number;
  durationMs: number;
}

export interface VolumeStatus {
  id: number;
  /** Bytes in the volume file. */
  bytes: number;
  liveNeedles: number;
  /** Needles that were deleted or replaced (their bytes are garbage until compaction). */
  deletedNeedles: number;
  liveBytes: number;
  /**
   * Bytes of deleted and replaced files still in the volume: what compacting it reclaims, at
   * least (it may also drop tombstones that no longer retire anything).
   */
  garbageBytes: number;
  /** garbageBytes / bytes, 0 for an empty volume. */
  garbageRatio: number;
  /**
   * Takes no more appends, for whatever reason: an older volume (only the newest takes appends),
   * or one an operator marked read-only. A sealed volume is still read and may be compacted.
   */
  sealed: boolean;
  /** Marked read-only by an operator (persisted as `N.readonly`); such a volume is also sealed. */
  readOnly: boolean;
}

export interface StoreStatus {
  volumes: VolumeStatus[];
  liveNeedles: number;
  deletedNeedles: number;
  bytes: number;
  liveBytes: number;
  garbageBytes: number;
  garbageRatio: number;
  /** The key the next stored file will get. */
  nextKey: Key;
  /**
   * Bytes at which a volume takes no more appends and the next one is started (`--volume-size`),
   * for a store that has such a bound. A volume can be larger: one file bigger than the bound
   * gets a volume of its own.
   */
  volumeSize?: number;
}

export interface CompactReport {
  volume: number;
  bytesBefore: number;
  bytesAfter: number;
  reclaimedBytes: number;
  /** Needles copied into the compacted volume. */
  needles: number;
  /**
   * The writable volume, compacted where it stands (it was mostly garbage) and still taking
   * appends, so it grows again; otherwise the volume takes no more appends.
   */
  inPlace: boolean;
  durationMs: number;
}

/**
 * What a cluster's `status` answers (CLUSTER.md): the store's figures over every logical volume
 * (one replica of each counted), with the nodes and logical volumes. `volumes` lists the logical
 * volumes as volumes.
 */
export interface ClusterStatus extends StoreStatus {
  nodes: ClusterNodeStatus[];
  logicalVolumes: LogicalVolumeStatus[];
}

export interface ClusterNodeStatus {
  id: string;
  /** The node's `--advertise` URL. */
  url: string;
  state: 'up' | 'down';
  /** ISO 8601. */
  lastHeartbeat: string;
  bytesFree: number;
}

export interface LogicalVolumeStatus {
  id: number;
  /** Whether it takes writes now: stored writable, and every replica `ok`. */
  state: 'writable' | 'read-only';
  /** Why it takes no writes; null when writable. */
  reason: string | null;
  replicas: { node: string; state: 'ok' | 'down' | 'catching-up' }[];
}
