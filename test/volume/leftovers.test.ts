import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

describe('temporary files left behind', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await makeTempDir('haystack-leftovers-');
    await (await openVolumeStore({ dir })).close();
  });

  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('are removed when the store opens, and files that only look like them are kept', async () => {
    const leftovers = [
      '2.dat.new', // a volume being created
      '1.dat.compact', // a compaction's copy
      '1.idx.compact',
      '1.dat.compact.new',
      '1.idx.rebuild-4242', // an index a failed or killed `reload` was writing
      'upload-0123456789abcdef.spool', // a chunked upload
    ];
    const strangers = [
      'notes.spool',
      '1.idx.rebuild-',
      '1.idx.rebuild-x',
      '1.idx.bak',
      '0.dat.new',
    ];
    for (const name of [...leftovers, ...strangers]) await writeFile(join(dir, name), 'x');
    const log: string[] = [];
    const store = await openVolumeStore({ dir, log: (line) => log.push(line) });
    await store.close();
    const names = await readdir(dir);
    for (const name of leftovers) expect(names).not.toContain(name);
    for (const name of strangers) expect(names).toContain(name);
    expect(log.filter((line) => line.endsWith('left by a crash'))).toHaveLength(leftovers.length);
  });
});
