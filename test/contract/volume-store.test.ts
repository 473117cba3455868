import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FsyncMode, openVolumeStore } from '../../adapters/volume/index.ts';
import { CACHE_SIZE_TESTED } from '../../adapters/volume/needle-cache.ts';
import { describeStore, type StoreFixture } from './describe-store.ts';

/** `cacheSize` undefined: the default (the cache off). */
async function volumeFixture(fsync: FsyncMode, cacheSize?: number): Promise<StoreFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'haystack-contract-'));
  const options = { dir, fsync, ...(cacheSize === undefined ? {} : { cacheSize }) };
  const store = await openVolumeStore(options);
  return {
    store,
    reopen: () => openVolumeStore(options),
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

for (const fsync of ['always', 'never'] as const) {
  describeStore(`volume (fsync ${fsync})`, () => volumeFixture(fsync));
}
describeStore('volume (fsync always, cache on)', () => volumeFixture('always', CACHE_SIZE_TESTED));
