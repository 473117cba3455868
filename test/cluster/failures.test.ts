import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { ClusterStore } from '../../adapters/cluster/cluster-store.ts';
import { openDirectory } from '../../adapters/cluster/directory/index.ts';
import type { Directory } from '../../adapters/cluster/directory/types.ts';
import { createReplicaClient } from '../../adapters/cluster/replica-client.ts';
import type { LocalCluster } from '../../scripts/support/local-cluster.ts';
import type { ClusterStatus } from '../../storage/index.ts';
import { expectBytes, expectCode, randomBytes, readAll } from '../contract/helpers.ts';
import { useClusterFixture } from './support/cluster-fixture.ts';

/**
 * What a cluster does when a node fails, step by step and deterministically: nodes are child
 * processes killed with SIGKILL; the cluster store is a gateway's, in this process. Timing never
 * decides an outcome: each step waits for the state it needs, read from the Directory.
 */

const TOKEN = 'failures-cluster-token-0123456789';
/** Long enough that no node counts as down by heartbeat in these tests unless it is meant to. */
const NODE_TIMEOUT_MS = 60_000;
const WAIT_MS = 30_000;

interface Setup {
  cluster: LocalCluster;
  store: ClusterStore;
  directory: Directory;
}

const clusters = useClusterFixture('haystack-failures-');

async function setUp(nodes: number, replicas: number): Promise<Setup> {
  const { cluster, directory: url } = await clusters.local({
    token: TOKEN,
    replicas,
    nodeTimeout: String(NODE_TIMEOUT_MS / 1000),
    bundle: inject('cliBundle'),
  });
  const directory = await openDirectory(url);
  clusters.closeAfter(() => directory.close());
  await Promise.all(Array.from({ length: nodes }, (_, i) => cluster.startNode(i)));
  const store = await ClusterStore.open({
    directory: await openDirectory(url),
    replicas: createReplicaClient({ token: TOKEN, timeoutMs: 5_000 }),
    replicaCount: replicas,
    nodeTimeoutMs: NODE_TIMEOUT_MS,
    viewMaxAgeMs: 0,
  });
  clusters.closeAfter(() => store.close());
  return { cluster, store, directory };
}

/** Polls the cluster's status until `check` holds (bounded: a hung cluster fails the test). */
async function until(store: ClusterStore, what: string, check: (s: ClusterStatus) => boolean) {
  const limit = Date.now() + WAIT_MS;
  for (;;) {
    const status = await store.status();
    if (check(status)) return status;
    if (Date.now() > limit) throw new Error(`not ${what} in time: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const file = (bytes: Uint8Array) => ({ body: bytes, length: bytes.byteLength });

describe('a cluster when a node fails', () => {
  it('a delete while a replica is away is owed to it, never read back, and applied on its return', async () => {
    const { cluster, store, directory } = await setUp(3, 3);
    const bytes = randomBytes(5000);
    const info = await store.put(file(bytes));
    const kept = randomBytes(100);
    const keep = await store.put(file(kept));
    const view = await directory.view(NODE_TIMEOUT_MS);
    const away = cluster.nodes[2];
    const awayId = view.nodes.find((node) => node.url === away?.url)?.id;
    await cluster.kill(away);

    await store.delete(info.key);
    // The delete is recorded for the node that was away, and that replica is not read from.
    expect((await directory.placeKey(info.key)).owedBy).toEqual([awayId]);
    await expectCode(store.get(info.key), 'not_found');
    await expectCode(store.head(info.key), 'not_found');
    expectBytes(await readAll((await store.get(keep.key)).body), kept);
    const status = await store.status();
    const replica = status.logicalVolumes[0]?.replicas.find((r) => r.node === awayId);
    expect(replica?.state).toBe('catching-up');
    expect(status.logicalVolumes[0]?.state).toBe('read-only');

    // Back: it applies what it owes, then its replica is ok and the volume writable again.
    await cluster.startNode(2);
    await until(store, 'caught up', (s) =>
      (s.logicalVolumes[0]?.replicas ?? []).every((r) => r.state === 'ok'),
    );
    expect((await directory.placeKey(info.key)).owedBy).toEqual([]);
    expect(
      (await until(store, 'writable', (s) => s.logicalVolumes[0]?.state === 'writable'))
        .logicalVolumes,
    ).toHaveLength(1);
    await expectCode(store.get(info.key), 'not_found');
    const after = await store.put(file(randomBytes(10)));
    expect(after.volume).toBe(info.volume);
  });

  it('a write that fails on a replica goes to another volume under a new key, the first read-only', async () => {
    const { cluster, store } = await setUp(4, 3);
    const first = await store.put(file(randomBytes(1000)));
    const status = await store.status();
    const volume = status.logicalVolumes[0];
    const victim = status.nodes.find((node) => node.id === volume?.replicas[0]?.node);
    await cluster.kill(cluster.nodes.find((member) => member.url === victim?.url));

    // The Directory still counts that node up (a minute of node timeout): the write finds out.
    const bytes = randomBytes(3000);
    const second = await store.put(file(bytes));
    expect(second.key).toBeGreaterThan(first.key);
    expect(second.volume).not.toBe(first.volume);
    expectBytes(await readAll((await store.get(second.key)).body), bytes);
    const after = await store.status();
    const old = after.logicalVolumes.find((v) => v.id === first.volume);
    expect(old?.state).toBe('read-only');
    expect(old?.reason).toMatch(/failed/);
    // The new volume avoided the node that failed; the old file still reads from what is left.
    const made = after.logicalVolumes.find((v) => v.id === second.volume);
    expect(made?.replicas.map((r) => r.node)).not.toContain(victim?.id);
    expect((await store.head(first.key)).size).toBe(1000);
  });

  it('with fewer than R nodes up, writes are 503 unavailable and reads go on', async () => {
    const { cluster, store } = await setUp(3, 3);
    const bytes = randomBytes(2000);
    const info = await store.put(file(bytes));
    await cluster.kill(cluster.nodes[0]);
    await cluster.kill(cluster.nodes[1]);
    await expectCode(store.put(file(randomBytes(10))), 'unavailable');
    expectBytes(await readAll((await store.get(info.key)).body), bytes);
  });

  it('a replica that answers corrupt is repaired from a good one, and reads never see it', async () => {
    const { cluster, store } = await setUp(3, 3);
    const bytes = randomBytes(20_000);
    const info = await store.put(file(bytes));
    // Damage the file on two of its three replicas: a byte of its data, in the volume file.
    const marker = Buffer.from(bytes.subarray(5000, 5032));
    for (const index of [0, 1]) {
      const dat = path.join(cluster.nodeDir(index), 'volumes', String(info.volume), '1.dat');
      const content = await readFile(dat);
      const at = content.indexOf(marker);
      expect(at, `the file's bytes in ${dat}`).toBeGreaterThan(0);
      const handle = await open(dat, 'r+');
      await handle.write(Buffer.from([(content[at] ?? 0) ^ 0xff]), 0, 1, at);
      await handle.close();
    }
    const api = createReplicaClient({ token: TOKEN });
    try {
      const urls = [0, 1].map((i) => cluster.nodes[i]?.url ?? '');
      for (const url of urls) {
        await expectCode(api.get(url, info.volume, info.key), 'corrupt');
      }
      // Reads fail over to the good replica, and each corrupt answer starts a repair.
      const limit = Date.now() + WAIT_MS;
      for (;;) {
        expectBytes(await readAll((await store.get(info.key)).body), bytes);
        const healthy = await Promise.all(
          urls.map((url) =>
            api.get(url, info.volume, info.key).then(
              async (read) => Buffer.compare(Buffer.from(await readAll(read.body)), bytes) === 0,
              () => false,
            ),
          ),
        );
        if (healthy.every(Boolean)) break;
        if (Date.now() > limit) throw new Error(`not repaired in time: ${healthy}`);
      }
      expect((await store.head(info.key)).etag).toBe(info.etag);
    } finally {
      await api.close();
    }
  });
});
