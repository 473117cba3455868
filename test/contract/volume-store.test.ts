import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FsyncMode, openVolumeStore } from '../../adapters/volume/index.ts';
import { describeStore, type StoreFixture } from './describe-store.ts';

async function volumeFixture(fsync: FsyncMode): Promise<StoreFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'haystack-contract-'));
  const store = await openVolumeStore({ dir, fsync });
  return {
    store,
    reopen: () => openVolumeStore({ dir, fsync }),
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

for (const fsync of ['always', 'never'] as const) {
  describeStore(`volume (fsync ${fsync})`, () => volumeFixture(fsync));
}
