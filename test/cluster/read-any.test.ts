import { describe, expect, it } from 'vitest';
import { ViewCache } from '../../adapters/cluster/cluster-view.ts';
import { type ReadContext, readAny } from '../../adapters/cluster/read-any.ts';
import { NodeUnreachable } from '../../adapters/cluster/replica-api-client.ts';
import { Suspects } from '../../adapters/cluster/suspects.ts';
import { StoreError } from '../../storage/index.ts';
import { expectCode } from '../contract/helpers.ts';
import { MemoryDirectory } from '../support/memory-directory.ts';

/**
 * The read path's choices, over the in-memory Directory: which replicas a read may ask, in what
 * order, and what answer it gives when they fail. The replicas are functions that answer (or
 * fail) as the test says, and record who was asked.
 */

const TIMEOUT = 60_000;

async function cluster(nodes: string[]) {
  const directory = new MemoryDirectory();
  for (const id of nodes) await directory.registerNode(id, `http://${id}`, 1000);
  const volume = await directory.createVolume(nodes.length, TIMEOUT);
  if (!volume) throw new Error('no volume');
  for (const id of nodes) await directory.finishCatchUp(volume.id, id);
  const lease = await directory.leaseKeys(volume.id, 10, 'test');
  const context: ReadContext = {
    directory,
    views: new ViewCache({ directory, nodeTimeoutMs: TIMEOUT, maxAgeMs: 0 }),
    suspects: new Suspects(TIMEOUT),
    onCorrupt: () => {},
  };
  return { directory, context, key: lease.first, volume: volume.id };
}

describe('a read over replicas', () => {
  it('never asks a replica that owes a delete of the key, whatever the view says of it', async () => {
    const { directory, context, key, volume } = await cluster(['a', 'b', 'c']);
    await directory.oweDeletes(volume, key, ['a', 'b'], null);
    const asked: string[] = [];
    for (let i = 0; i < 20; i++) {
      await readAny(context, key, async (url) => {
        asked.push(url);
        return 'bytes';
      });
    }
    expect(new Set(asked)).toEqual(new Set(['http://c']));
    // Every replica owes it (a gateway killed after journaling a delete and before any replica
    // applied it): none may be asked, and it is not there, not out of reach.
    await directory.oweDeletes(volume, key, ['c'], null);
    await expectCode(
      readAny(context, key, async () => 'bytes'),
      'not_found',
    );
  });

  it('fails over on unreachable, 5xx and corrupt replicas, and 404 only when every one said so', async () => {
    const { context, key } = await cluster(['a', 'b', 'c']);
    const corrupt: string[] = [];
    context.onCorrupt = (node) => corrupt.push(node);
    const failures = [
      new NodeUnreachable('x', 'refused'),
      new StoreError('io_error', 'disk'),
      new StoreError('corrupt', 'checksum'),
    ];
    for (const fail of failures) {
      const asked: string[] = [];
      const answer = await readAny(context, key, async (url) => {
        asked.push(url);
        if (asked.length < 3) throw fail;
        return `from ${url}`;
      });
      expect(asked).toHaveLength(3);
      expect(answer).toBe(`from ${asked[2]}`);
    }
    expect(corrupt).toHaveLength(2);
    const missing = readAny(context, key, async () => {
      throw new StoreError('not_found', 'no');
    });
    await expectCode(missing, 'not_found');
    const mixed = readAny(context, key, async (url) => {
      if (url === 'http://a') throw new StoreError('not_found', 'lost to disk damage');
      throw new NodeUnreachable(url, 'refused');
    });
    await expectCode(mixed, 'not_found');
    await expectCode(
      readAny(context, key, async (url) => {
        throw new NodeUnreachable(url, 'refused');
      }),
      'unavailable',
    );
  });

  it('asks replicas that failed lately last, and a key never leased is not_found at once', async () => {
    const { context, key } = await cluster(['a', 'b', 'c']);
    context.suspects.add('a');
    context.suspects.add('b');
    for (let i = 0; i < 10; i++) {
      const asked: string[] = [];
      await readAny(context, key, async (url) => {
        asked.push(url);
        return 'ok';
      });
      expect(asked).toEqual(['http://c']);
    }
    await expectCode(
      readAny(context, key + 1000, async () => 'never'),
      'not_found',
    );
  });
});
