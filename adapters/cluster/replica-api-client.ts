import type { Readable } from 'node:stream';
import type {
  ByteRange,
  FileInfo,
  FileRead,
  Key,
  KeyPage,
  ReplicaStatus,
  SyncReport,
} from '../../storage/index.ts';

/**
 * What a gateway (and a node catching up) needs of the internal replica API of a store node
 * (docs/CLUSTER-DESIGN.md), over HTTP: `replica-client.ts` implements it with undici.
 *
 * Failures: a node that answered with a JSON error rejects with a `StoreError` of that code
 * (`not_found`, `conflict`, `corrupt`, `no_space`, `io_error`, ...; a 5xx without a known code
 * is `io_error`); a node that could not be reached or did not answer in time (refused, reset,
 * DNS, timeout, a malformed answer, a body cut short) rejects with `NodeUnreachable`.
 */
export interface ReplicaApi {
  /** Stores a file on one replica (idempotent for the same file; `conflict` for another). */
  put(node: string, volume: number, key: Key, cookie: number, file: ReplicaBody): Promise<FileInfo>;
  /**
   * Reads a file (or a range of it). A body up to `bufferUpTo` bytes (default 1 MiB) is read
   * whole before this resolves, so a failure midway rejects here and the caller can try another
   * replica; a larger one streams, and a failure midway errors the stream.
   */
  get(
    node: string,
    volume: number,
    key: Key,
    options?: { range?: ByteRange; cookie?: number; bufferUpTo?: number },
  ): Promise<FileRead>;
  head(node: string, volume: number, key: Key, cookie?: number): Promise<FileInfo>;
  /** Resolves once the replica applied it; `not_found` when it does not have the key. */
  delete(node: string, volume: number, key: Key, cookie?: number): Promise<void>;
  listKeys(node: string, volume: number, after: Key, limit: number): Promise<KeyPage>;
  sync(node: string): Promise<SyncReport>;
  status(node: string): Promise<{ node: string; replicas: ReplicaStatus[] }>;
  /** Closes every kept-alive connection. */
  close(): Promise<void>;
}

/** `node` everywhere above is the node's base URL (its `--advertise`), without a trailing slash. */

/** A file's bytes to send: in memory, or a stream opened anew for each replica (a spool file). */
export type ReplicaBody =
  | { size: number; contentType: string; bytes: Uint8Array }
  | { size: number; contentType: string; open: () => Readable };

/** The node could not be reached, or did not answer in time, or its answer broke off. */
export class NodeUnreachable extends Error {
  override readonly name = 'NodeUnreachable';
  readonly node: string;

  constructor(node: string, message: string, options?: ErrorOptions) {
    super(`${node}: ${message}`, options);
    this.node = node;
  }
}
