import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runClusterTorture, tortureFailed } from '../../scripts/torture/cluster-harness.ts';
import { formatFigures, formatNotes } from '../../scripts/torture/cluster-ledger.ts';
import { useClusterFixture } from './support/cluster-fixture.ts';

/**
 * The cluster's crash loop inside `npm test`, for 2 cycles (`npm run torture:cluster` runs as
 * many as asked). A fresh seed each run, printed on failure so that it can be repeated with
 * `npm run torture:cluster -- --seed S`. It starts its own PostgreSQL, as the script does.
 */
const clusters = useClusterFixture('haystack-torture-cluster-test-');

describe('cluster crash loop (short)', () => {
  it('loses nothing acknowledged over 2 cycles of kill -9 under load', {
    timeout: 180_000,
  }, async () => {
    const seed = randomInt(2 ** 31);
    const dir = await clusters.dir();
    const lines: string[] = [];
    const result = await runClusterTorture({
      cycles: 2,
      seed,
      dir,
      eventsPerCycle: 3,
      log: (line) => lines.push(line),
    });
    const summary = `seed ${seed}\n${formatFigures(result.cycles, result.figures)}\n${formatNotes(result.figures)}\n${result.failureLines.join('\n')}\n${lines.join('\n')}`;
    expect(tortureFailed(result), summary).toBe(false);
    expect(result.cycles, summary).toBe(2);
    expect(result.figures.acknowledged, summary).toBeGreaterThan(0);
    expect(result.nodeKills + result.gatewayKills, summary).toBeGreaterThan(0);
  });
});
