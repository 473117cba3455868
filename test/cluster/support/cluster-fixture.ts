import { afterEach } from 'vitest';
import { killAll } from '../../../scripts/support/cli-process.ts';
import { LocalCluster, type LocalClusterOptions } from '../../../scripts/support/local-cluster.ts';
import { ClusterFixture } from '../../../scripts/torture/cluster-fixture.ts';
import { testDatabase } from '../../support/postgres.ts';
import { makeTempDir, removeTempDir } from '../../support/tmp.ts';

type FixtureOptions = ConstructorParameters<typeof ClusterFixture>[0];

/** What a cluster needs besides the Directory and the folder, which the helper makes. */
export type ClusterOptions = Omit<LocalClusterOptions, 'directory' | 'root'>;

export interface ClusterFixtures {
  /** A fresh empty folder for the running test (named by the prefix), removed after it. */
  dir(): Promise<string>;
  /**
   * A `ClusterFixture` (starts and kills told to its liveness, the crash tests' waits) over a new
   * Directory database, in a folder of its own. Nothing is started yet.
   */
  fixture(options: Omit<FixtureOptions, 'directory' | 'root'>): Promise<ClusterFixture>;
  /** A bare `LocalCluster` the same way, with its Directory's URL and its folder. */
  local(
    options: ClusterOptions,
  ): Promise<{ cluster: LocalCluster; directory: string; root: string }>;
  /**
   * Runs `close` after the running test, before its clusters are killed (a store or a
   * Directory the test opened in this process), latest first; a failure there is ignored.
   */
  closeAfter(close: () => Promise<unknown>): void;
}

/**
 * For a vitest file whose tests run clusters as child processes: after each test, what it asked
 * `closeAfter` to close is closed, every cluster it made is killed, then every child process
 * spawned by scripts/support/cli-process.ts that is still running (a harness's own), and its
 * folders are removed.
 */
export function useClusterFixture(prefix: string): ClusterFixtures {
  const dirs: string[] = [];
  const clusters: LocalCluster[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
    await Promise.all(clusters.splice(0).map((cluster) => cluster.killAll()));
    await killAll();
    await Promise.all(dirs.splice(0).map(removeTempDir));
  });

  const dir = async () => {
    const made = await makeTempDir(prefix);
    dirs.push(made);
    return made;
  };
  const place = () => Promise.all([testDatabase(), dir()]);

  return {
    dir,
    async fixture(options) {
      const [directory, root] = await place();
      const fixture = new ClusterFixture({ ...options, directory, root });
      clusters.push(fixture.cluster);
      return fixture;
    },
    async local(options) {
      const [directory, root] = await place();
      const cluster = new LocalCluster({ ...options, directory, root });
      clusters.push(cluster);
      return { cluster, directory, root };
    },
    closeAfter(close) {
      closers.push(close);
    },
  };
}
