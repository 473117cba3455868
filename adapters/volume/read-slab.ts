/**
 * Buffers for needle reads, cut from shared slabs the way Node's Buffer pool serves small
 * buffers. A fresh buffer per read of tens of kilobytes is a new malloc'd ArrayBuffer: on every
 * request it costs page faults, kernel time and GC work (measured in docs/PERFORMANCE.md). A slab
 * is freed once no slice of it is referenced any more; a slice held long (a response stuck behind
 * a slow client's full socket buffer) keeps its whole slab alive, so slabs stay small.
 */
const SLAB_SIZE = 1024 * 1024;
/** Larger reads get their own buffer: a few per slab at most would not pay. */
const MAX_SLICE = 128 * 1024;

let slab = Buffer.allocUnsafe(0);
let used = 0;

/** An uninitialized buffer of `length` bytes for a read to fill; it may share memory with others. */
export function readBuffer(length: number): Buffer {
  if (length > MAX_SLICE) return Buffer.allocUnsafe(length);
  if (used + length > slab.byteLength) {
    slab = Buffer.allocUnsafe(SLAB_SIZE);
    used = 0;
  }
  const slice = slab.subarray(used, used + length);
  used += (length + 7) & ~7; // keep slices 8-byte aligned, like the pool does
  return slice;
}
