import { describe, expect, it } from 'vitest';
import { ViewCache } from '../../adapters/cluster/cluster-view.ts';
import { type ReadContext, readAny } from '../../adapters/cluster/read-any.ts';
import { Suspects } from '../../adapters/cluster/suspects.ts';
import { isStoreError } from '../../storage/index.ts';
import { MemoryDirectory } from '../support/memory-directory.ts';

const TIMEOUT = 10_000;

async function cluster() {
  const directory = new MemoryDirectory();
  for (const id of ['a', 'b', 'c']) await directory.registerNode(id, `http://${id}.test`, 1000);
  const volume = await directory.createVolume(3, TIMEOUT);
  if (!volume) throw new Error('no volume made');
  const lease = await directory.leaseKeys(volume.id, 10, 'test');
  const context: ReadContext = {
    directory,
    views: new ViewCache({ directory, nodeTimeoutMs: TIMEOUT, maxAgeMs: 0 }),
    suspects: new Suspects(TIMEOUT),
    onCorrupt: () => {},
  };
  return { directory, volume, key: lease.first, context };
}

describe('readAny', () => {
  it('answers not_found, not unavailable, when every replica owes a delete of the key', async () => {
    // A gateway killed after journaling a delete (one row per replica) and before any replica
    // applied it: the key is deleted, every replica is skipped until its node applies the row.
    const { directory, volume, key, context } = await cluster();
    await directory.oweDeletes(volume.id, key, ['a', 'b', 'c'], null);
    const asked: string[] = [];
    const error = await readAny(context, key, async (node) => {
      asked.push(node);
      return 'bytes';
    }).catch((err: unknown) => err);
    expect(asked).toEqual([]);
    expect(isStoreError(error, 'not_found'), String(error)).toBe(true);
  });

  it('reads from a replica that owes nothing when the others owe the delete', async () => {
    const { directory, volume, key, context } = await cluster();
    await directory.oweDeletes(volume.id, key, ['a', 'b'], null);
    const asked: string[] = [];
    const result = await readAny(context, key, async (node) => {
      asked.push(node);
      return node;
    });
    expect(result).toBe('http://c.test');
    expect(asked).toEqual(['http://c.test']);
  });
});
