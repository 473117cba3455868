import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../adapters/volume/read-slab.ts';

describe('read slabs', () => {
  it('hands out disjoint buffers of the asked length, whatever the mix of sizes', () => {
    const sizes = [0, 1, 7, 8, 1000, 65_536, 65_537, 128 * 1024, 128 * 1024 + 1, 300_000];
    const taken: Array<{ buffer: Buffer; fill: number }> = [];
    for (let round = 0; round < 40; round++) {
      for (const [i, size] of sizes.entries()) {
        const buffer = readBuffer(size);
        expect(buffer.byteLength).toBe(size);
        expect(buffer.byteOffset % 8).toBe(0);
        const fill = (round * sizes.length + i) % 256;
        buffer.fill(fill);
        taken.push({ buffer, fill });
      }
    }
    // Had two buffers shared a byte, the later fill would show through the earlier buffer.
    for (const { buffer, fill } of taken) {
      expect(buffer.every((byte) => byte === fill)).toBe(true);
    }
  });
});
