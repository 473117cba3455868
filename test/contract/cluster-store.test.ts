import { afterAll, inject } from 'vitest';
import { ClusterStore } from '../../adapters/cluster/cluster-store.ts';
import { openDirectory } from '../../adapters/cluster/directory/index.ts';
import { createReplicaClient } from '../../adapters/cluster/replica-client.ts';
import { LocalCluster } from '../../scripts/support/local-cluster.ts';
import type { BlobStore } from '../../storage/index.ts';
import { testDatabase } from '../support/postgres.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { describeStore } from './describe-store.ts';

/**
 * The contract of the storage port against a real cluster: the store under test is the cluster
 * store a gateway serves (in this process), over a fresh Directory in PostgreSQL and two store
 * nodes that are child processes (`haystack node`), with R = 2. Each test gets a cluster of its
 * own; reopening is a new cluster store over the same Directory, as a restarted gateway is.
 */

const TOKEN = 'contract-cluster-token-0123456789';

async function openClusterStore(directoryUrl: string): Promise<BlobStore> {
  return ClusterStore.open({
    directory: await openDirectory(directoryUrl),
    replicas: createReplicaClient({ token: TOKEN }),
    replicaCount: 2,
    nodeTimeoutMs: 10_000,
  });
}

/** A fresh cluster: a database of its own and two nodes (child processes), listening. */
async function startCluster(): Promise<{ directory: string; root: string; cluster: LocalCluster }> {
  const [directory, root] = await Promise.all([testDatabase(), makeTempDir('haystack-cluster-')]);
  const cluster = new LocalCluster({
    directory,
    root,
    token: TOKEN,
    replicas: 2,
    nodeTimeout: '10',
    // Small volumes: the contract's large files cross volume boundaries on the nodes too.
    nodeFlags: ['--volume-size', '8M'],
    bundle: inject('cliBundle'),
  });
  try {
    await Promise.all([cluster.startNode(0), cluster.startNode(1)]);
  } catch (err) {
    await cluster.killAll();
    await removeTempDir(root);
    throw err;
  }
  return { directory, root, cluster };
}

// The next test's cluster starts while a test runs: most of a test's time is its cluster's start.
let next: ReturnType<typeof startCluster> | undefined;
afterAll(async () => {
  const left = await next?.catch(() => undefined);
  await left?.cluster.killAll();
  if (left) await removeTempDir(left.root);
});

describeStore('cluster (2 nodes as child processes, R = 2)', async () => {
  const { directory, root, cluster } = await (next ?? startCluster());
  next = startCluster();
  next.catch(() => {}); // reported when a test awaits it
  const store = await openClusterStore(directory);
  return {
    store,
    reopen: () => openClusterStore(directory),
    cleanup: async () => {
      await store.close();
      await cluster.killAll();
      await removeTempDir(root);
    },
  };
});
