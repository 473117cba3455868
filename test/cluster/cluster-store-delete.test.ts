import { describe, expect, it } from 'vitest';
import { ClusterStore } from '../../adapters/cluster/cluster-store.ts';
import type { ReplicaBody } from '../../adapters/cluster/replica-api-client.ts';
import { type FileInfo, isStoreError, StoreError } from '../../storage/index.ts';
import { MemoryDirectory } from '../support/memory-directory.ts';
import { replicaApiOf } from './support/replica-api-double.ts';

/**
 * A delete through the cluster store when every node's agent applies the journaled delete (it
 * reads the rows owed by its node every tick) before the gateway's own DELETE reaches it: each
 * replica then answers that DELETE 404, and the delete must still be answered as done, since the
 * file was there. Seen in `npm run torture:cluster` as acknowledged files whose DELETE answered
 * 404 while every node was up.
 */
interface Stored {
  bytes: Uint8Array;
  cookie: number;
  contentType: string;
}

function fakeNodes(directory: MemoryDirectory, ids: Map<string, string>) {
  const files = new Map<string, Map<number, Stored>>();
  const of = (node: string) => {
    const map = files.get(node) ?? new Map<number, Stored>();
    files.set(node, map);
    return map;
  };
  const info = (key: number, volume: number, file: Stored): FileInfo => ({
    key,
    size: file.bytes.byteLength,
    volume,
    offset: 0,
    cookie: file.cookie,
    contentType: file.contentType,
    etag: `"${key}-${file.cookie}"`,
  });
  const find = (node: string, key: number, cookie?: number) => {
    const file = of(node).get(key);
    if (!file || (cookie !== undefined && cookie !== file.cookie)) {
      throw new StoreError('not_found', `no file under key ${key}`);
    }
    return file;
  };
  /** What a node's agent does on its tick: applies and settles the deletes owed by it. */
  const agentTick = async (node: string) => {
    const id = ids.get(node) as string;
    const rows = await directory.deletesOwedBy(id, 1000);
    for (const row of rows) of(node).delete(row.key);
    await directory.settleDeletes(rows.map((row) => row.id));
  };
  const api = replicaApiOf({
    async put(node, volume, key, cookie, file: ReplicaBody) {
      if (!('bytes' in file)) throw new Error('the fake takes bytes only');
      const stored = { bytes: file.bytes, cookie, contentType: file.contentType };
      of(node).set(key, stored);
      return info(key, volume, stored);
    },
    async get(node, volume, key, options = {}) {
      const file = find(node, key, options.cookie);
      return { info: info(key, volume, file), body: file.bytes };
    },
    async head(node, volume, key, cookie) {
      return info(key, volume, find(node, key, cookie));
    },
    async delete(node, _volume, key, cookie) {
      // The agent's tick lands between the gateway's journal and its request.
      await agentTick(node);
      find(node, key, cookie);
      of(node).delete(key);
    },
  });
  return { api, files };
}

describe('ClusterStore.delete', () => {
  it('answers a delete as done when every node applied its journaled row before the request', async () => {
    const directory = new MemoryDirectory();
    const ids = new Map<string, string>();
    for (const id of ['a', 'b', 'c']) {
      await directory.registerNode(id, `http://${id}.test`, 1000);
      ids.set(`http://${id}.test`, id);
    }
    const { api, files } = fakeNodes(directory, ids);
    const store = await ClusterStore.open({
      directory,
      replicas: api,
      replicaCount: 3,
      nodeTimeoutMs: 10_000,
    });
    try {
      const info = await store.put({ body: new TextEncoder().encode('hello') });
      await store.delete(info.key);
      for (const node of files.values()) expect(node.has(info.key)).toBe(false);
      const after = await store.head(info.key).catch((err: unknown) => err);
      expect(isStoreError(after, 'not_found'), String(after)).toBe(true);
      // A key that never held a file is still 404.
      const missing = await store.delete(info.key + 1).catch((err: unknown) => err);
      expect(isStoreError(missing, 'not_found'), String(missing)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
