import type {
  ByteRange,
  FileInfo,
  FileRead,
  Key,
  PutInput,
  StoreStatus,
  SyncReport,
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
  /** Reads a live file, or the given range of it. */
  get(key: Key, range?: ByteRange): Promise<FileRead>;
  /** What `get` would answer, without the bytes. */
  head(key: Key): Promise<FileInfo>;
  /** Stores new content under a new key and retires the old key for good. */
  replace(key: Key, input: PutInput): Promise<FileInfo>;
  /** Retires a key for good. */
  delete(key: Key): Promise<void>;
  /** Flushes every volume and index to disk. */
  sync(): Promise<SyncReport>;
  status(): Promise<StoreStatus>;
  /** Flushes, syncs and releases the store; later calls reject with `closed`. */
  close(): Promise<void>;
}
