import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReplicaSet } from '../../adapters/cluster/replica-set.ts';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { type BlobStore, isStoreError } from '../../storage/index.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStoreError(err) ? err.code : err).toBe(code);
}

describe('ReplicaSet', () => {
  let dir = '';
  let set: ReplicaSet;
  /** Folders `open` was called with, in order. */
  let opened: string[];
  let allowed: Set<number>;
  let asked: number[];

  const makeSet = () =>
    new ReplicaSet({
      dir,
      open: async (folder) => {
        opened.push(folder);
        return openVolumeStore({ dir: folder });
      },
      mayCreate: async (volume) => {
        asked.push(volume);
        return allowed.has(volume);
      },
    });

  beforeEach(async () => {
    dir = await makeTempDir('haystack-replica-set-');
    opened = [];
    asked = [];
    allowed = new Set([1, 2, 3]);
    set = makeSet();
  });

  afterEach(async () => {
    await set.close().catch(() => {});
    await removeTempDir(dir);
  });

  it('creates a replica only where mayCreate allows, in DIR/volumes/N', async () => {
    const store = await set.replica(2, { create: true });
    expect(await exists(join(dir, 'volumes', '2'))).toBe(true);
    expect(opened).toEqual([join(dir, 'volumes', '2')]);
    expect(await set.replica(2)).toBe(store);

    await expectCode(set.replica(9, { create: true }), 'not_found');
    expect(asked).toEqual([2, 9]);
    expect(await exists(join(dir, 'volumes', '9'))).toBe(false);
    expect(set.volumes()).toEqual([2]);
  });

  it('without create, a volume with no folder is not_found and mayCreate is not asked', async () => {
    await expectCode(set.replica(1), 'not_found');
    expect(asked).toEqual([]);
    expect(await exists(join(dir, 'volumes', '1'))).toBe(false);
    await expectCode(set.replica(0, { create: true }), 'not_found');
    await expectCode(set.replica(1.5, { create: true }), 'not_found');
  });

  it('concurrent first calls share one open of one store', async () => {
    const calls = await Promise.all([
      set.replica(3, { create: true }),
      set.replica(3, { create: true }),
      set.replica(3, { create: true }),
    ]);
    expect(opened).toHaveLength(1);
    expect(new Set(calls).size).toBe(1);
    // and over an existing folder too
    await set.close();
    opened = [];
    set = makeSet();
    const again = await Promise.all([set.replica(3), set.replica(3), set.replica(3)]);
    expect(opened).toHaveLength(1);
    expect(new Set(again).size).toBe(1);
  });

  it('openAll opens every replica folder found, and ignores what is not one', async () => {
    const first = await set.replica(1, { create: true });
    await first.capabilities.replicas?.putReplica(5, 77, { body: new Uint8Array([1, 2, 3]) });
    await set.replica(3, { create: true });
    await set.close();

    await mkdir(join(dir, 'volumes', '007'));
    await mkdir(join(dir, 'volumes', 'tmp'));
    await writeFile(join(dir, 'volumes', '4'), 'a file, not a folder');
    opened = [];
    set = makeSet();
    expect(await set.openAll()).toEqual([1, 3]);
    expect(set.volumes()).toEqual([1, 3]);
    expect(opened.sort()).toEqual([join(dir, 'volumes', '1'), join(dir, 'volumes', '3')]);
    const status = await set.status();
    expect(status.map((replica) => [replica.volume, replica.liveNeedles])).toEqual([
      [1, 1],
      [3, 0],
    ]);
    expect((await set.sync()).volumes).toBeGreaterThanOrEqual(2);
  });

  it('openAll of a node without replicas opens nothing', async () => {
    expect(await set.openAll()).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a failed open is not kept: the next call opens again', async () => {
    let fail = true;
    const stores: BlobStore[] = [];
    set = new ReplicaSet({
      dir,
      open: async (folder) => {
        if (fail) throw new Error('disk trouble');
        const store = await openVolumeStore({ dir: folder });
        stores.push(store);
        return store;
      },
      mayCreate: async () => true,
    });
    await expect(set.replica(1, { create: true })).rejects.toThrow('disk trouble');
    expect(set.volumes()).toEqual([]);
    fail = false;
    await set.replica(1);
    expect(set.volumes()).toEqual([1]);
  });

  it('close closes every store; later calls are closed', async () => {
    const one = await set.replica(1, { create: true });
    const two = await set.replica(2, { create: true });
    await set.close();
    await expectCode(one.status(), 'closed');
    await expectCode(two.status(), 'closed');
    await expectCode(set.replica(1), 'closed');
    await expectCode(set.sync(), 'closed');
  });
});
