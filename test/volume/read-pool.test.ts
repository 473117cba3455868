import { setImmediate as nextTurn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Lease,
  MAX_FREE_BYTES,
  POOL_MAX_CLASS,
  POOL_MIN_CLASS,
  pooledLength,
  ReadPool,
} from '../../adapters/volume/read-pool.ts';

const KiB = 1024;

/** The class buffer behind a lease: what must never be in two live leases. */
const backing = (lease: Lease) => lease.bytes.buffer;

describe('read pool', () => {
  it('hands out exactly the length asked, from the power-of-two class that holds it', () => {
    const pool = new ReadPool();
    const cases: Array<[number, number]> = [
      [0, 16 * KiB],
      [1, 16 * KiB],
      [8 * KiB + 1, 16 * KiB],
      [16 * KiB, 16 * KiB],
      [16 * KiB + 1, 32 * KiB],
      [64 * KiB + 1096, 128 * KiB], // a 64 KiB file's needle
      [300_000, 512 * KiB],
      [POOL_MAX_CLASS, POOL_MAX_CLASS],
    ];
    for (const [length, size] of cases) {
      const lease = pool.lease(length);
      expect(lease.bytes.byteLength).toBe(length);
      expect(lease.bytes.byteOffset).toBe(0);
      expect(backing(lease).byteLength).toBe(size);
    }
    expect(() => pool.lease(POOL_MAX_CLASS + 1)).toThrow(RangeError);
    expect(() => pool.lease(-1)).toThrow(RangeError);
    expect(() => pool.lease(1.5)).toThrow(RangeError);
  });

  it('pools the lengths above half the smallest class, up to the largest', () => {
    expect(pooledLength(POOL_MIN_CLASS / 2)).toBe(false);
    expect(pooledLength(POOL_MIN_CLASS / 2 + 1)).toBe(true);
    expect(pooledLength(POOL_MAX_CLASS)).toBe(true);
    expect(pooledLength(POOL_MAX_CLASS + 1)).toBe(false);
  });

  it('reuses a released buffer for the next lease of its class, and only of its class', () => {
    const pool = new ReadPool();
    const first = pool.lease(40 * KiB);
    first.release();
    const other = pool.lease(20 * KiB); // 32 KiB class: not the 64 KiB one given back
    expect(backing(other)).not.toBe(backing(first));
    const again = pool.lease(64 * KiB);
    expect(backing(again)).toBe(backing(first));
    expect(pool.stats()).toEqual({ leases: 3, reused: 1, released: 1, dropped: 0, freeBytes: 0 });
  });

  it('takes a second release of a lease as nothing, even once its buffer is leased again', () => {
    const pool = new ReadPool();
    const first = pool.lease(64 * KiB);
    first.release();
    first.release();
    expect(pool.stats()).toMatchObject({ released: 1, freeBytes: 64 * KiB });
    const second = pool.lease(64 * KiB);
    expect(backing(second)).toBe(backing(first));
    // A stale release must not put the buffer `second` holds back on the free list.
    first.release();
    const third = pool.lease(64 * KiB);
    expect(backing(third)).not.toBe(backing(second));
    expect(pool.stats()).toMatchObject({ leases: 3, reused: 1, released: 1, freeBytes: 0 });
  });

  it('never hands one buffer to two leases at once, whatever the order of leases and releases', () => {
    const lengths = fc.integer({ min: 1, max: POOL_MAX_CLASS });
    const step = fc.oneof(
      fc.record({ lease: lengths }),
      fc.record({ release: fc.nat() }),
      fc.record({ again: fc.nat() }), // a second release of a lease already given back
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const pool = new ReadPool(8 * POOL_MAX_CLASS);
        const live: Lease[] = [];
        const given: Lease[] = [];
        for (const s of steps) {
          if ('lease' in s) {
            const lease = pool.lease(s.lease);
            for (const held of live) expect(backing(held)).not.toBe(backing(lease));
            live.push(lease);
          } else if ('release' in s && live.length > 0) {
            const [lease] = live.splice(s.release % live.length, 1) as [Lease];
            lease.release();
            given.push(lease);
          } else if ('again' in s && given.length > 0) {
            (given[s.again % given.length] as Lease).release();
          }
        }
      }),
    );
  });

  it('keeps at most its bound of free bytes, split evenly between the classes', () => {
    // 7 classes, 64 KiB each: four 16 KiB buffers, two of 32 KiB, one of 64 KiB, none larger.
    const pool = new ReadPool(7 * 64 * KiB);
    const small = Array.from({ length: 6 }, () => pool.lease(16 * KiB));
    for (const lease of small) lease.release();
    expect(pool.stats()).toMatchObject({ released: 6, dropped: 2, freeBytes: 64 * KiB });
    const large = pool.lease(128 * KiB);
    large.release();
    expect(pool.stats()).toMatchObject({ released: 7, dropped: 3, freeBytes: 64 * KiB });
    expect(backing(pool.lease(128 * KiB))).not.toBe(backing(large));

    const none = new ReadPool(0);
    const lease = none.lease(64 * KiB);
    lease.release();
    expect(backing(none.lease(64 * KiB))).not.toBe(backing(lease));
    expect(none.stats()).toMatchObject({ reused: 0, dropped: 1, freeBytes: 0 });
    expect(() => new ReadPool(-1)).toThrow(RangeError);
  });

  it('bounds the process pool at 32 MiB', () => {
    const pool = new ReadPool();
    const leases = Array.from({ length: 100 }, () => pool.lease(POOL_MAX_CLASS));
    for (const lease of leases) lease.release();
    expect(pool.stats().freeBytes).toBeLessThanOrEqual(MAX_FREE_BYTES / 7);
    expect(MAX_FREE_BYTES).toBe(32 * 1024 * 1024);
  });

  it('keeps no hold on a leased buffer: one never released is collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pool = new ReadPool();
    const weak = (() => new WeakRef(backing(pool.lease(64 * KiB))))();
    // A WeakRef made in this turn holds its target until the turn ends.
    await nextTurn();
    gc();
    expect(weak.deref()).toBeUndefined();
    expect(pool.stats()).toMatchObject({ leases: 1, released: 0, freeBytes: 0 });
  });
});
