import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  failed,
  formatResult,
  runTorture,
  type TortureOptions,
} from '../../scripts/torture/harness.ts';

/**
 * The short crash loop inside `npm test`: a few cycles of each mode (`npm run torture` runs as
 * many as asked). A fresh seed each run, printed on failure so that it can be repeated with
 * `npm run torture -- --seed S --mode M`. Files up to 128 KiB and short kill delays keep it quick;
 * the long run uses the full 0 B to 1 MiB. In `compact` cycles the delay is the clients' head
 * start before the first compact request, and most kills land while a compaction has no answer.
 */
const quick: Omit<TortureOptions, 'mode' | 'seed' | 'cycles'> = {
  clients: 4,
  maxFileSize: 128 * 1024,
  killDelayMs: [0, 150],
  // Small volumes: every run crosses roll-overs to new volumes, and kills land in some of them.
  volumeSize: '1M',
};

describe('crash loop (short)', () => {
  for (const [mode, fsync, cycles] of [
    ['kill', 'always', 4],
    ['lost-cache', 'always', 4],
    ['mixed', 'always', 4],
    ['kill', 'never', 3],
    ['compact', 'always', 4],
  ] as const) {
    it(`loses nothing acknowledged: ${mode}, --fsync ${fsync}, ${cycles} cycles`, async () => {
      const seed = randomInt(2 ** 31);
      const log: string[] = [];
      const result = await runTorture({
        ...quick,
        cycles,
        mode,
        fsync,
        seed,
        log: (line) => log.push(line),
      });
      const summary = `${formatResult(result)}\n${result.failures.join('\n')}\n${log.join('\n')}`;
      expect(failed(result), summary).toBe(false);
      expect(result.cycles, summary).toBe(cycles);
      expect(result.acknowledged, summary).toBeGreaterThan(0);
      if (mode === 'compact') {
        expect(result.compaction?.cycles, summary).toBe(cycles);
        expect(result.compaction?.requests, summary).toBeGreaterThan(0);
      }
    });
  }
});
