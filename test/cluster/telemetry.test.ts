import { describe, expect, it } from 'vitest';
import { ClusterStore } from '../../adapters/cluster/cluster-store.ts';
import type { ReplicaApi } from '../../adapters/cluster/replica-api-client.ts';
import { type FileInfo, isStoreError, StoreError } from '../../storage/index.ts';
import { MemoryDirectory } from '../support/memory-directory.ts';
import { replicaApiOf } from './support/replica-api-double.ts';

/**
 * The cluster store's telemetry: a replica that answers `corrupt` is told to observers, with the
 * logical volume. Over the in-memory Directory and replicas that are functions: every replica
 * stores what it is sent, and answers every read of it `corrupt` (so the order in which a read
 * asks them does not matter: all are asked).
 */
function damagedReplicas(): ReplicaApi {
  const stored = new Map<number, FileInfo>();
  const corrupt = (key: number) => new StoreError('corrupt', `key ${key}: bad checksum`);
  return replicaApiOf({
    async put(_node, volume, key, cookie, file) {
      const info = {
        key,
        size: file.size,
        volume,
        offset: 0,
        cookie,
        contentType: file.contentType,
        etag: `"${key}-${cookie}"`,
      };
      stored.set(key, info);
      return info;
    },
    async get(_node, _volume, key) {
      throw corrupt(key);
    },
    async head(_node, _volume, key) {
      const info = stored.get(key);
      if (!info) throw new StoreError('not_found', `no file under key ${key}`);
      return info;
    },
    async delete() {},
  });
}

describe('cluster store telemetry', () => {
  it('tells of every replica that answered corrupt, until unsubscribed', async () => {
    const directory = new MemoryDirectory();
    for (const id of ['a', 'b', 'c']) await directory.registerNode(id, `http://${id}.test`, 1000);
    const store = await ClusterStore.open({
      directory,
      replicas: damagedReplicas(),
      replicaCount: 3,
      nodeTimeoutMs: 10_000,
    });
    try {
      const telemetry = store.capabilities.telemetry;
      if (!telemetry) throw new Error('the cluster store declares no telemetry');
      expect(telemetry.cacheStats).toBeUndefined();
      const corrupt: number[] = [];
      const stop = telemetry.observe({ corruptRead: (volume) => corrupt.push(volume) });
      telemetry.observe({
        corruptRead: () => {
          throw new Error('an observer that fails must not change the answer');
        },
      });
      const info = await store.put({ body: new TextEncoder().encode('hello') });
      const err = await store.get(info.key).then(
        () => undefined,
        (e: unknown) => e,
      );
      // Every replica answered corrupt: none could serve it.
      expect(isStoreError(err, 'unavailable'), String(err)).toBe(true);
      expect(corrupt).toEqual([info.volume, info.volume, info.volume]);
      stop();
      await store.get(info.key).catch(() => {});
      expect(corrupt).toHaveLength(3);
    } finally {
      await store.close();
    }
  });
});
