import { describe, expect, it } from 'vitest';
import { guardDirectory } from '../../adapters/cluster/directory-guard.ts';
import { StoreError } from '../../storage/index.ts';
import { expectCode } from '../contract/helpers.ts';
import { MemoryDirectory } from '../support/memory-directory.ts';

describe('the Directory as the cluster store calls it', () => {
  it("turns a failure to reach it into unavailable, and lets the store's own errors pass", async () => {
    const inner = new MemoryDirectory();
    const guarded = guardDirectory(inner);
    inner.before = async (call) => {
      if (call === 'placeKey') throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      if (call === 'view') throw new StoreError('closed', 'closed');
    };
    await expectCode(guarded.placeKey(1), 'unavailable');
    await expectCode(guarded.view(1000), 'closed');
  });

  it("passes on what the work under a key lock throws, as it is the caller's", async () => {
    const guarded = guardDirectory(new MemoryDirectory());
    const bug = new TypeError('a bug in the work');
    await expect(guarded.withKeyLock(7, async () => Promise.reject(bug))).rejects.toBe(bug);
    expect(await guarded.withKeyLock(7, async () => 'done')).toBe('done');
  });
});
