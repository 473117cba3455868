import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPostgres } from '../support/postgres.ts';
import { ClusterFixture, checkLedger } from './cluster-fixture.ts';
import { failures, Ledger, type LedgerFigures } from './cluster-ledger.ts';
import { startLoad } from './cluster-load.ts';
import { Random } from './random.ts';

/**
 * The cluster's crash loop. It starts its own throw-away PostgreSQL and a cluster of child
 * processes under `dir`, then each cycle:
 *
 * 1. clients write, read, replace and delete through the gateways while, at seeded moments
 *    (after a seeded number of acknowledged writes, plus a seeded delay), nodes and gateways are
 *    killed with `kill -9` and started again: never more than nodes - R nodes down at once while
 *    the clients write, and always one gateway up;
 * 2. in some cycles, with the clients stopped, more nodes are killed, down to R - 1: a write must
 *    answer 503 `unavailable` through every gateway, while reads of live keys and deletes go on;
 * 3. everything is started again, and the loop waits until every gateway's status shows every
 *    node up and every replica `ok`;
 * 4. the whole ledger is read back: every acknowledged live key byte-exact, every deleted or
 *    replaced key 404, no key handed out twice (ledger.ts judges each answer against what was
 *    really up while it ran).
 */
export interface ClusterTortureOptions {
  cycles: number;
  seed: number;
  nodes?: number;
  gateways?: number;
  replicas?: number;
  /** `--node-timeout` of every member, as typed. Default `2`. */
  nodeTimeout?: string;
  /** Concurrent clients. Default 4. */
  clients?: number;
  /** Kills and restarts per cycle, at most (at least 2). Default 5. */
  eventsPerCycle?: number;
  /** Where the PostgreSQL and the members' folders go (made if missing). */
  dir: string;
  log?: (line: string) => void;
  /** Given, once started, what kills every child and stops the PostgreSQL (for a signal). */
  onCleanup?: (cleanup: () => Promise<void>) => void;
}

export interface ClusterTortureResult {
  seed: number;
  cycles: number;
  figures: LedgerFigures;
  nodeKills: number;
  gatewayKills: number;
  /** Cycles that went below R nodes up, and the writes they saw refused as they must be. */
  outages: number;
  outageRefusals: number;
  failureLines: string[];
  durationMs: number;
}

export function tortureFailed(result: ClusterTortureResult): boolean {
  return failures(result.figures) > 0 || result.cycles === 0;
}

const TOKEN = 'cluster-torture-token-0123456789';

export async function runClusterTorture(
  options: ClusterTortureOptions,
): Promise<ClusterTortureResult> {
  const started = performance.now();
  const nodes = options.nodes ?? 4;
  const gateways = options.gateways ?? 2;
  const replicas = options.replicas ?? 3;
  const log = options.log ?? (() => {});
  if (nodes < replicas) throw new RangeError(`${nodes} nodes cannot hold ${replicas} replicas`);
  const seed = options.seed >>> 0;
  await mkdir(options.dir, { recursive: true });
  // Its own folder (a temp one, removed on stop): as root the server runs as `postgres`.
  const postgres = await startPostgres();
  const fixture = new ClusterFixture({
    directory: await postgres.createDatabase('torture'),
    root: path.join(options.dir, 'cluster'),
    token: TOKEN,
    replicas,
    nodeTimeout: options.nodeTimeout ?? '2',
    nodes,
    gateways,
    waitLimitMs: 120_000,
  });
  const ledger = new Ledger({
    liveness: fixture.liveness,
    endpoints: fixture,
    replicas,
    log,
    probe: (volume, key) => fixture.probe(volume, key),
  });
  const result: ClusterTortureResult = {
    seed,
    cycles: 0,
    figures: ledger.figures,
    nodeKills: 0,
    gatewayKills: 0,
    outages: 0,
    outageRefusals: 0,
    failureLines: ledger.failureLines,
    durationMs: 0,
  };
  const { liveness } = fixture;
  const cleanup = async () => {
    await fixture.killAll();
    await postgres.stop();
  };
  options.onCleanup?.(cleanup);
  try {
    await fixture.startAll();
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      const rng = new Random(seed, cycle);
      const cycleStart = performance.now();
      const before = { ...ledger.figures };

      // 1. Load, with kills and restarts.
      const load = startLoad(ledger, {
        clients: options.clients ?? 4,
        seed,
        stream: cycle,
        maxLive: 200,
      });
      const events: string[] = [];
      try {
        const count = rng.int(2, Math.max(2, options.eventsPerCycle ?? 5));
        for (let e = 0; e < count; e++) {
          await ledger.acknowledgedMore(rng.int(5, 40));
          await sleep(rng.int(0, 400));
          const choices: (() => Promise<string>)[] = [];
          const downNodes = liveness.downNodes();
          const downGateways = liveness.downGateways();
          if (downNodes.length < nodes - replicas) {
            choices.push(async () => {
              const victim = rng.pick(liveness.upNodes());
              await fixture.killNode(victim);
              result.nodeKills++;
              return `kill node ${victim}`;
            });
          }
          if (downNodes.length > 0) {
            choices.push(async () => {
              const back = rng.pick(downNodes);
              await fixture.startNode(back);
              return `start node ${back}`;
            });
          }
          if (liveness.upGateways().length > 1) {
            choices.push(async () => {
              const victim = rng.pick(liveness.upGateways());
              await fixture.killGateway(victim);
              result.gatewayKills++;
              return `kill gateway ${victim}`;
            });
          }
          if (downGateways.length > 0) {
            choices.push(async () => {
              const back = rng.pick(downGateways);
              await fixture.startGateway(back);
              return `start gateway ${back}`;
            });
          }
          events.push(await rng.pick(choices)());
        }
        await ledger.acknowledgedMore(rng.int(1, 20));
      } finally {
        await load.stop();
      }

      // 2. Sometimes, an outage below R nodes: writes refused, reads and deletes go on.
      if (rng.chance(0.3)) {
        result.outages++;
        while (liveness.upNodes().length > replicas - 1) {
          const victim = rng.pick(liveness.upNodes());
          await fixture.killNode(victim);
          result.nodeKills++;
        }
        for (const back of liveness.downGateways()) await fixture.startGateway(back);
        await fixture.waitNodes(fixture.nodeUrls(liveness.downNodes()), 'down');
        events.push(`outage: nodes ${liveness.upNodes().join(',')} up`);
        for (const gateway of liveness.upGateways()) {
          const refused = await refusedWrite(fixture.gatewayUrl(gateway), rng);
          if (refused === true) result.outageRefusals++;
          else ledger.fail('other', `cycle ${cycle}: with R - 1 nodes up, ${refused}`);
        }
        const live = [...ledger.live.keys()];
        for (let i = 0; i < Math.min(30, live.length); i++) {
          await ledger.readKey(rng, rng.pick(live));
        }
        for (let i = 0; i < rng.int(0, 5); i++) await ledger.delete(rng);
      }

      // 3. Everything back, every replica ok.
      await Promise.all([
        ...liveness.downNodes().map((i) => fixture.startNode(i)),
        ...liveness.downGateways().map((i) => fixture.startGateway(i)),
      ]);
      await fixture.waitHealthy();

      // 4. The whole ledger.
      const checkStart = performance.now();
      await checkLedger(fixture, ledger, rng);
      const checkSeconds = (performance.now() - checkStart) / 1000;
      result.cycles = cycle;
      const f = ledger.figures;
      log(
        `cycle ${cycle}: ${events.join(', ')}; acknowledged +${f.acknowledged - before.acknowledged}, ` +
          `live ${ledger.live.size}, gone ${ledger.gone.size}, failures ${failures(f)}, ` +
          `${((performance.now() - cycleStart) / 1000).toFixed(1)} s (check ${checkSeconds.toFixed(1)} s)`,
      );
    }
  } catch (err) {
    ledger.fail('other', `the loop stopped: ${err instanceof Error ? err.stack : String(err)}`);
  } finally {
    await cleanup();
    result.durationMs = performance.now() - started;
  }
  return result;
}

/** A POST that must be refused with 503 `unavailable`: true, or what it answered instead. */
async function refusedWrite(gateway: string, rng: Random): Promise<true | string> {
  try {
    const res = await fetch(`${gateway}/file`, {
      method: 'POST',
      body: rng.bytes(rng.int(0, 8192)),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status === 503 && text.includes('"unavailable"')) return true;
    return `POST ${gateway}/file answered ${res.status} ${text.slice(0, 200)}`;
  } catch (err) {
    return `POST ${gateway}/file failed: ${String(err)}`;
  }
}
