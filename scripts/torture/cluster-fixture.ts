import { LocalCluster, type LocalClusterOptions } from '../support/local-cluster.ts';
import type { Ledger } from './cluster-ledger.ts';
import { Liveness } from './cluster-liveness.ts';
import {
  allHealthy,
  type ClusterStatusAnswer,
  nodesAre,
  readStatus,
  waitForStatus,
} from './cluster-status.ts';
import { eachLimited } from './each-limited.ts';
import type { Random } from './random.ts';

/**
 * A `LocalCluster` whose every start and kill is told to a `Liveness` (down before the kill, up
 * once listening), with the waits the crash tests need: until the gateways' status shows what
 * the harness did, until every replica is `ok` again.
 */
export class ClusterFixture {
  readonly cluster: LocalCluster;
  readonly liveness: Liveness;
  readonly nodeCount: number;
  readonly gatewayCount: number;
  /** How long any wait on the cluster may take before it is a failure. */
  readonly waitLimitMs: number;

  constructor(
    options: LocalClusterOptions & { nodes: number; gateways: number; waitLimitMs?: number },
  ) {
    this.cluster = new LocalCluster(options);
    this.nodeCount = options.nodes;
    this.gatewayCount = options.gateways;
    this.liveness = new Liveness(options.nodes, options.gateways);
    this.waitLimitMs = options.waitLimitMs ?? 60_000;
  }

  async startAll(): Promise<void> {
    await Promise.all(Array.from({ length: this.nodeCount }, (_, i) => this.startNode(i)));
    await Promise.all(Array.from({ length: this.gatewayCount }, (_, i) => this.startGateway(i)));
    await this.waitNodes(this.nodeUrls(), 'up');
  }

  async startNode(index: number): Promise<void> {
    await this.cluster.startNode(index);
    this.liveness.nodeUp(index);
  }

  async startGateway(index: number): Promise<void> {
    await this.cluster.startGateway(index);
    this.liveness.gatewayUp(index);
  }

  async killNode(index: number): Promise<void> {
    this.liveness.nodeDown(index);
    await this.cluster.kill(this.cluster.nodes[index]);
  }

  async killGateway(index: number): Promise<void> {
    this.liveness.gatewayDown(index);
    await this.cluster.kill(this.cluster.gateways[index]);
  }

  gatewayUrl(index: number): string {
    const url = this.cluster.gateways[index]?.url;
    if (url === undefined) throw new Error(`gateway ${index} never started`);
    return url;
  }

  nodeUrl(index: number): string {
    const url = this.cluster.nodes[index]?.url;
    if (url === undefined) throw new Error(`node ${index} never started`);
    return url;
  }

  nodeUrls(indexes: readonly number[] = range(this.nodeCount)): string[] {
    return indexes.map((i) => this.nodeUrl(i));
  }

  /** Any gateway that is up now (the first). */
  anyGateway(): string {
    const [up] = this.liveness.upGateways();
    if (up === undefined) throw new Error('no gateway is up');
    return this.gatewayUrl(up);
  }

  /** Waits until an up gateway's status shows every node of `urls` in `state`. */
  waitNodes(urls: readonly string[], state: 'up' | 'down'): Promise<ClusterStatusAnswer> {
    return waitForStatus(
      () => this.anyGateway(),
      `nodes ${urls.join(', ')} to be ${state}`,
      (status) => nodesAre(status, urls, state),
      this.waitLimitMs,
    );
  }

  /** Waits until every node is up and every replica `ok`, as every gateway's status says. */
  async waitHealthy(): Promise<ClusterStatusAnswer> {
    const urls = this.nodeUrls();
    let status: ClusterStatusAnswer | undefined;
    for (const gateway of this.liveness.upGateways()) {
      status = await waitForStatus(
        () => this.gatewayUrl(gateway),
        'every node up and every replica ok',
        (s) => allHealthy(s, urls),
        this.waitLimitMs,
      );
    }
    if (!status) throw new Error('no gateway is up');
    return status;
  }

  /** Each logical volume's replicas as node indexes, from a gateway's status. */
  async replicaMap(): Promise<Map<number, number[]>> {
    const status = await readStatus(this.anyGateway());
    const indexOfId = new Map<string, number>();
    for (const node of status.nodes) {
      const index = this.nodeUrls().indexOf(node.url);
      if (index >= 0) indexOfId.set(node.id, index);
    }
    return new Map(
      status.logicalVolumes.map((volume) => [
        volume.id,
        volume.replicas.flatMap((r) => {
          const index = indexOfId.get(r.node);
          return index === undefined ? [] : [index];
        }),
      ]),
    );
  }

  /**
   * What every up node answers for `key` of `volume` now, straight from its replica API (a
   * HEAD): for the report of a loss.
   */
  async probe(volume: number, key: number): Promise<string> {
    const answers = await Promise.all(
      this.liveness.upNodes().map(async (index) => {
        try {
          const res = await fetch(`${this.nodeUrl(index)}/replicas/${volume}/${key}`, {
            method: 'HEAD',
            headers: { authorization: `Bearer ${this.cluster.options.token}` },
            signal: AbortSignal.timeout(10_000),
          });
          return `node ${index} ${res.status}`;
        } catch (err) {
          return `node ${index} ${String(err)}`;
        }
      }),
    );
    return answers.join(', ');
  }

  /** Judges the ledger's failed reads against the volumes' replicas. */
  async judgeReads(ledger: Ledger): Promise<void> {
    if (ledger.pendingReadFailures === 0) return;
    const map = await this.replicaMap();
    ledger.judgeReads((volume) => map.get(volume));
  }

  killAll(): Promise<void> {
    return this.cluster.killAll();
  }
}

/**
 * Reads back the whole ledger through the gateways: every live key byte-exact, every deleted or
 * replaced key 404, every key left open settled one way or the other; then judges the reads that
 * failed.
 */
export async function checkLedger(
  fixture: ClusterFixture,
  ledger: Ledger,
  rng: Random,
  concurrency = 6,
): Promise<void> {
  await eachLimited([...ledger.uncertain.keys()], concurrency, (key) => ledger.settle(rng, key));
  await eachLimited([...ledger.live.keys()], concurrency, (key) => ledger.readKey(rng, key));
  await eachLimited([...ledger.gone.keys()], concurrency, (key) => ledger.readGone(rng, key));
  await fixture.judgeReads(ledger);
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
