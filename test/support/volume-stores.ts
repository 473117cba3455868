import { afterEach, beforeEach } from 'vitest';
import {
  openVolumeStore,
  type VolumeStore,
  type VolumeStoreOptions,
} from '../../adapters/volume/index.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export type StoreOptions = Omit<VolumeStoreOptions, 'dir'>;

/**
 * For a vitest file: each test gets a data directory of its own, and every store it opens there
 * is closed, and the directory removed, after it.
 */
export function useVolumeStores(prefix: string) {
  let dir = '';
  const stores: VolumeStore[] = [];

  beforeEach(async () => {
    dir = await makeTempDir(prefix);
  });

  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((store) => store.close()));
    await removeTempDir(dir);
  });

  const open = async (options: StoreOptions = {}): Promise<VolumeStore> => {
    const store = await openVolumeStore({ dir, ...options });
    stores.push(store);
    return store;
  };

  return {
    /** The running test's data directory. */
    dir: () => dir,
    open,
    /** Closes `store` and opens another over the same directory. */
    async reopen(store: VolumeStore, options?: StoreOptions): Promise<VolumeStore> {
      await store.close();
      stores.splice(stores.indexOf(store), 1);
      return open(options);
    },
  };
}
