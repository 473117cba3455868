import { describe, expect, it } from 'vitest';
import { deferred } from '../../adapters/volume/group-commit.ts';
import { KeyLock } from '../../adapters/volume/key-lock.ts';

describe('KeyLock', () => {
  it('runs operations on one key one at a time, in order, and other keys alongside', async () => {
    const lock = new KeyLock();
    const gate = deferred();
    const order: string[] = [];
    const first = lock.run(1, async () => {
      order.push('1a start');
      await gate.promise;
      order.push('1a end');
    });
    const second = lock.run(1, async () => {
      order.push('1b');
    });
    await lock.run(2, async () => {
      order.push('2');
    });
    expect(order).toEqual(['1a start', '2']);
    gate.resolve();
    await Promise.all([first, second]);
    expect(order).toEqual(['1a start', '2', '1a end', '1b']);
  });

  it('goes on after a failed operation, and forgets keys once idle', async () => {
    const lock = new KeyLock();
    const failed = lock.run(3, async () => {
      throw new Error('boom');
    });
    const next = lock.run(3, async () => 'ran');
    await expect(failed).rejects.toThrow('boom');
    expect(await next).toBe('ran');
    expect(lock.size).toBe(0);
  });
});
