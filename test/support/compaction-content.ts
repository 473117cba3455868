import { createHash } from 'node:crypto';

/** Deterministic bytes for the n-th file: anyone can check them again after a crash. */
export function contentOf(n: number): Buffer {
  const size = 1 + ((n * 7919) % 6000);
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`file ${n}`).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}
