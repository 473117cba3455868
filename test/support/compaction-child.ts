/**
 * A store under load that compacts over and over, for kill -9 tests: it prints a line for every
 * acknowledged put and delete, and `compacting N` as each compaction starts.
 * Usage: node --import tsx test/support/compaction-child.ts DIR
 */
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { contentOf } from './compaction-content.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: compaction-child.ts DIR');
const store = await openVolumeStore({ dir, volumeSize: 256 * 1024 });
const live: number[] = [];
let next = 0;
for (let round = 0; ; round++) {
  for (let i = 0; i < 150; i++) {
    // The content depends on a counter, not on the key: put the counter in the content type.
    const n = next++;
    const info = await store.put({ body: contentOf(n), contentType: `test/n-${n}` });
    live.push(info.key);
    process.stdout.write(`put ${info.key} ${n}\n`);
  }
  for (let i = live.length - 1; i >= 0; i -= 2) {
    const [key] = live.splice(i, 1);
    if (key === undefined) continue;
    await store.delete(key);
    process.stdout.write(`del ${key}\n`);
  }
  process.stdout.write(`compacting ${round}\n`);
  const reports = await store.compact();
  process.stdout.write(`compacted ${round} ${reports.length}\n`);
}
