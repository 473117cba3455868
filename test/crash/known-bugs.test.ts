import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openVolumeStore, rebuildIndexes } from '../../adapters/volume/index.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * Bugs the crash tests found in code this suite does not own, each written as the test that
 * should pass. `it.fails` keeps `npm test` green while the bug is there and turns red once it is
 * fixed: then drop the `.fails`.
 */
describe('known bugs', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map(removeTempDir));
  });

  // Found by `npm run torture -- --mode kill --fsync never --volume-size 1M` (about one run of
  // 5 cycles in 4): a kill -9 during a roll-over, after VolumeFile.create opened the new `N.dat`
  // with 'wx+' and before its superblock was written, leaves an empty `N.dat`. Start-up then
  // refuses ("shorter than its 32-byte superblock") and so does reload: the directory is unusable
  // until someone deletes the file by hand, though nothing in it was ever acknowledged.
  it('start-up and reload survive a kill during a volume roll-over', async () => {
    const dir = await makeTempDir('haystack-rollover-crash-');
    dirs.push(dir);
    const store = await openVolumeStore({ dir });
    const bytes = randomBytes(1000);
    const { key } = await store.put({ body: bytes, contentType: 'image/png' });
    await store.close();
    // What the kill leaves: the next volume's file, created, still empty.
    await writeFile(path.join(dir, '2.dat'), Buffer.alloc(0));

    const report = await rebuildIndexes({ dir });
    expect(report.live).toBe(1);
    const reopened = await openVolumeStore({ dir });
    try {
      const { body } = await reopened.get(key);
      expect(Buffer.from(body as Uint8Array).equals(bytes)).toBe(true);
      expect((await reopened.put({ body: Buffer.from('next') })).key).toBeGreaterThan(key);
    } finally {
      await reopened.close();
    }
  });
});
