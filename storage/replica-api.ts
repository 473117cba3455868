/**
 * The wire names of a store node's internal replica API (docs/CLUSTER-DESIGN.md), shared by the
 * node's routes (handlers/replica-routes.ts) and the gateway's client
 * (adapters/cluster/replica-client.ts), so that the two cannot drift apart.
 */

/** Path of one file of a logical volume's replica. */
export function replicaFilePath(volume: number, key: number): string {
  return `/replicas/${volume}/${key}`;
}

/** Path of the page of live keys of a replica above `after`. */
export function replicaKeysPath(volume: number, after: number, limit: number): string {
  return `/replicas/${volume}/keys?after=${after}&limit=${limit}`;
}

export const REPLICA_HEADERS = {
  /** The file's cookie, decimal: sent with a write, optional with a read or delete (checked). */
  cookie: 'x-haystack-cookie',
  /** The whole file's size, on a read (Content-Length is that of the range). */
  size: 'x-haystack-size',
  /** Where the needle starts in the replica's volume file, on a read. */
  offset: 'x-haystack-offset',
} as const;

/** Keys in one page of a replica's listing: the default and the most a caller may ask. */
export const KEY_PAGE_DEFAULT = 1000;
export const KEY_PAGE_MAX = 10_000;

/** A page of a replica's live keys, increasing; `next` is where the following page starts. */
export interface KeyPage {
  keys: number[];
  /** Pass as `after` for the next page; null when this was the last. */
  next: number | null;
}
