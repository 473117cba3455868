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
  /** Flushes, syncs and releases the store; later calls reject with `closed`. */
  close(): Promise<void>;

  /**
   * Operator calls, for adapters with volumes. `compact` rewrites volumes without their deleted
   * and replaced needles while the store keeps serving (all volumes that have garbage, or the one
   * named); `setVolumeReadOnly` stops appends to a volume for good.
   */
  compact?(volume?: number): Promise<CompactReport[]>;
  setVolumeReadOnly?(volume: number): Promise<VolumeStatus>;
}
