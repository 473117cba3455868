import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkLedger } from '../../scripts/torture/cluster-fixture.ts';
import {
  failures,
  formatFigures,
  formatNotes,
  Ledger,
} from '../../scripts/torture/cluster-ledger.ts';
import { startLoad } from '../../scripts/torture/cluster-load.ts';
import { readStatus } from '../../scripts/torture/cluster-status.ts';
import { Random } from '../../scripts/torture/random.ts';
import { useClusterFixture } from './support/cluster-fixture.ts';

/**
 * The cluster under `kill -9` (CLUSTER.md, "How it is proven"): 4 store nodes and 2 gateways as
 * child processes over a fresh Directory, R = 3, node timeout 2 s. Clients write, read, replace
 * and delete through both gateways while a node is killed, then a gateway; both come back; then
 * two other nodes are killed and everything is read from the two that are left, while writes
 * must answer 503 `unavailable`. Every wait is for an event (a listening line, a state in
 * `GET /status`), bounded generously.
 */
const NODES = 4;
const GATEWAYS = 2;
const R = 3;

const clusters = useClusterFixture('haystack-cluster-kill-');

describe('cluster under kill -9', () => {
  it('loses no acknowledged write, serves reads while a replica is up, never brings a delete back', {
    timeout: 240_000,
  }, async () => {
    const seed = randomInt(2 ** 31);
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    const f = await clusters.fixture({
      token: 'cluster-kill-test-token-0123456789',
      replicas: R,
      nodeTimeout: '2',
      nodes: NODES,
      gateways: GATEWAYS,
      waitLimitMs: 60_000,
    });
    const ledger = new Ledger({
      liveness: f.liveness,
      endpoints: f,
      replicas: R,
      log,
      probe: (volume, key) => f.probe(volume, key),
    });
    const report = () =>
      `seed ${seed}\n${formatFigures(1, ledger.figures)}\n${formatNotes(ledger.figures)}\n${ledger.failureLines.join('\n')}\n${lines.slice(-40).join('\n')}`;
    const rng = new Random(seed, 999);

    await f.startAll();
    const load = startLoad(ledger, { clients: 6, seed, stream: 0, maxLive: 250, bigEvery: 25 });
    try {
      await ledger.acknowledgedMore(40);
      // A node dies under load; writes must go on (3 of 4 up), on volumes without it.
      await f.killNode(0);
      await f.waitNodes([f.nodeUrl(0)], 'down');
      await ledger.acknowledgedMore(30);
      // A gateway dies: its clients' requests break and go to the other one.
      await f.killGateway(0);
      await ledger.acknowledgedMore(20);
      await Promise.all([f.startNode(0), f.startGateway(0)]);
      await f.waitHealthy();
      await ledger.acknowledgedMore(30);
    } finally {
      await load.stop();
    }
    expect(ledger.figures.interrupted + ledger.figures.acknowledged, report()).toBeGreaterThan(0);

    // Two other nodes die: 2 of 4 up, fewer than R. Reads go on; writes are 503 unavailable.
    await Promise.all([f.killNode(1), f.killNode(2)]);
    await f.waitNodes(f.nodeUrls([1, 2]), 'down');
    for (const gateway of [0, 1]) {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${f.gatewayUrl(gateway)}/file`, {
          method: 'POST',
          body: rng.bytes(rng.int(0, 4096)),
        });
        const body = (await res.json()) as { error?: { code?: string } };
        expect(res.status, report()).toBe(503);
        expect(body.error?.code, report()).toBe('unavailable');
      }
    }
    // Deletes still apply (journaled for the replicas that are away).
    for (let i = 0; i < 5; i++) await ledger.delete(rng);
    const status = await readStatus(f.gatewayUrl(1));
    expect(status.nodes.filter((n) => n.state === 'up').length, report()).toBe(2);
    await checkLedger(f, ledger, rng);

    const figures = ledger.figures;
    expect(failures(figures), report()).toBe(0);
    expect(figures.lost, report()).toBe(0);
    expect(figures.wrongBytes, report()).toBe(0);
    expect(figures.failedReadsWhileReachable, report()).toBe(0);
    expect(figures.deletedReadBack, report()).toBe(0);
    expect(figures.duplicateKeys, report()).toBe(0);
    expect(figures.writesFailedWithRUp, report()).toBe(0);
    expect(figures.acknowledged, report()).toBeGreaterThanOrEqual(120);
    expect(figures.deleted, report()).toBeGreaterThan(0);
    expect(figures.replaced, report()).toBeGreaterThan(0);
    expect(figures.readsOk, report()).toBeGreaterThan(0);
    expect(ledger.live.size + ledger.gone.size, report()).toBeGreaterThan(0);
    process.stdout.write(`${report().split('\n').slice(0, 3).join('\n')}\n`);
  });
});
