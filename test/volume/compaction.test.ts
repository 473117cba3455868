import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  openVolumeStore,
  rebuildIndexes,
  type VolumeStore,
  verifyDataDir,
} from '../../adapters/volume/index.ts';
import type { FileInfo } from '../../storage/index.ts';

let dir: string;
const stores: VolumeStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'haystack-compact-'));
});

afterEach(async () => {
  await Promise.allSettled(stores.splice(0).map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

async function open(volumeSize?: number): Promise<VolumeStore> {
  const store = await openVolumeStore({ dir, ...(volumeSize ? { volumeSize } : {}) });
  stores.push(store);
  return store;
}

async function readAll(store: VolumeStore, key: number): Promise<Buffer> {
  const { body } = await store.get(key);
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

interface Model {
  live: Map<number, { info: FileInfo; bytes: Buffer }>;
  gone: Set<number>;
  maxKey: number;
}

async function fill(store: VolumeStore, count: number): Promise<Model> {
  const model: Model = { live: new Map(), gone: new Set(), maxKey: 0 };
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(50 + ((i * 131) % 3000));
    const info = await store.put({ body: bytes, contentType: `t/${i % 7}` });
    model.live.set(info.key, { info, bytes });
    model.maxKey = info.key;
  }
  return model;
}

async function expectModel(store: VolumeStore, model: Model): Promise<void> {
  for (const { info, bytes } of model.live.values()) {
    const head = await store.head(info.key);
    expect(head.contentType).toBe(info.contentType);
    expect(head.cookie).toBe(info.cookie);
    expect((await readAll(store, info.key)).equals(bytes)).toBe(true);
  }
  for (const key of model.gone) {
    await expect(store.head(key)).rejects.toMatchObject({ code: 'not_found' });
  }
  const status = await store.status();
  expect(status.liveNeedles).toBe(model.live.size);
  expect(status.nextKey).toBeGreaterThan(model.maxKey);
}

describe('compaction', () => {
  it('drops deleted and replaced needles, keeps every live file, and survives reopen and reload', async () => {
    const store = await open();
    const model = await fill(store, 300);
    const keys = [...model.live.keys()];
    for (const key of keys.filter((_, i) => i % 2 === 0)) {
      await store.delete(key);
      model.live.delete(key);
      model.gone.add(key);
    }
    for (const key of keys.filter((_, i) => i % 10 === 1).slice(0, 20)) {
      const bytes = randomBytes(100);
      const info = await store.replace(key, { body: bytes });
      model.live.delete(key);
      model.gone.add(key);
      model.live.set(info.key, { info, bytes });
      model.maxKey = info.key;
    }
    // The highest key is deleted: compaction must not let it be handed out again.
    await store.delete(model.maxKey);
    model.live.delete(model.maxKey);
    model.gone.add(model.maxKey);

    const before = await store.status();
    const [report, ...others] = await store.compact();
    expect(others).toEqual([]);
    expect(report?.volume).toBe(1);
    expect(report?.reclaimedBytes).toBeGreaterThan(before.garbageBytes * 0.9);
    const after = await store.status();
    expect(after.volumes[0]?.garbageBytes).toBeLessThan(before.garbageBytes / 10);
    // Mostly garbage: compacted in place, appends waiting for the copy, no new volume.
    expect(after.volumes.map((v) => v.sealed)).toEqual([false]);
    await expectModel(store, model);

    const next = await store.put({ body: Buffer.from('after compaction') });
    expect(next.volume).toBe(1);
    model.live.set(next.key, { info: next, bytes: Buffer.from('after compaction') });
    model.maxKey = next.key;

    await store.close();
    await expectModel(await open(), model);
    for (const s of stores.splice(0)) await s.close();

    for (const name of await readdir(dir)) if (name.endsWith('.idx')) await rm(join(dir, name));
    await rebuildIndexes({ dir });
    await expectModel(await open(), model);
  });

  it('keeps serving reads, writes, replaces and deletes while it runs', async () => {
    const store = await open();
    const model = await fill(store, 400);
    const keys = [...model.live.keys()];
    for (const key of keys.slice(0, 200)) {
      await store.delete(key);
      model.live.delete(key);
      model.gone.add(key);
    }
    const failures: unknown[] = [];
    let compacting = true;
    const compaction = store.compact().finally(() => {
      compacting = false;
    });
    const workers = Array.from({ length: 4 }, async (_, w) => {
      let i = 0;
      // At least a few rounds, and on until the compaction is over.
      while (compacting || i < 5) {
        try {
          const key = keys[200 + ((w * 50 + i) % 200)] as number;
          const entry = model.live.get(key);
          if (entry && i % 7 === 3) {
            await store.delete(key);
            model.live.delete(key);
            model.gone.add(key);
          } else if (entry && i % 7 === 5) {
            const bytes = randomBytes(200);
            const info = await store.replace(key, { body: bytes });
            model.live.delete(key);
            model.gone.add(key);
            model.live.set(info.key, { info, bytes });
            model.maxKey = Math.max(model.maxKey, info.key);
          } else if (entry) {
            expect((await readAll(store, key)).equals(entry.bytes)).toBe(true);
          }
          const bytes = randomBytes(30);
          const info = await store.put({ body: bytes });
          model.live.set(info.key, { info, bytes });
          model.maxKey = Math.max(model.maxKey, info.key);
        } catch (err) {
          failures.push(err);
        }
        i++;
      }
    });
    await Promise.all([compaction, ...workers]);
    expect(failures).toEqual([]);
    await expectModel(store, model);
    await store.close();
    await expectModel(await open(), model);
  });

  it('a crash before the swap leaves the old volume; leftovers are removed at start-up', async () => {
    const store = await open();
    const model = await fill(store, 50);
    await store.close();
    await writeFile(join(dir, '1.dat.compact'), randomBytes(5000));
    await writeFile(join(dir, '1.idx.compact'), randomBytes(100));
    await expectModel(await open(), model);
    expect((await readdir(dir)).filter((name) => name.includes('compact'))).toEqual([]);
  });

  it('a crash between the two renames leaves the new volume, whose stale index is not trusted', async () => {
    const store = await open();
    const model = await fill(store, 60);
    for (const key of [...model.live.keys()].slice(0, 30)) {
      await store.delete(key);
      model.live.delete(key);
      model.gone.add(key);
    }
    await store.sync();
    await copyFile(join(dir, '1.idx'), join(dir, 'old.idx'));
    await store.compact(1);
    await store.close();
    // The state between the renames: the new volume, the old index, and the new index under
    // its temp name.
    await copyFile(join(dir, '1.idx'), join(dir, '1.idx.compact'));
    await rm(join(dir, '1.idx'));
    await copyFile(join(dir, 'old.idx'), join(dir, '1.idx')); // the index of before the swap
    await rm(join(dir, 'old.idx'));
    // verify calls it what it is: not damage, a state start-up repairs.
    const report = await verifyDataDir({ dir });
    expect(report.problems).toEqual([]);
    expect(report.notes.map((n) => n.message).join('\n')).toMatch(
      /stopped between its two renames/,
    );
    await expectModel(await open(), model);
    expect(await readdir(dir)).not.toContain('1.idx.compact');
  });

  it('compacts an older volume while the newest keeps taking writes', async () => {
    const store = await open(64 * 1024);
    const model = await fill(store, 200);
    const status = await store.status();
    expect(status.volumes.length).toBeGreaterThan(3);
    const inFirst = [...model.live.values()].filter((f) => f.info.volume === 1);
    for (const { info } of inFirst.slice(1)) {
      await store.delete(info.key);
      model.live.delete(info.key);
      model.gone.add(info.key);
    }
    const writable = (await store.status()).volumes.length;
    const [report] = await store.compact(1);
    expect(report?.reclaimedBytes).toBeGreaterThan(0);
    // Compacting an older volume leaves the writable one in place: no new volume was started.
    expect((await store.status()).volumes.length).toBe(writable);
    const x = await store.put({ body: Buffer.from('x') });
    expect(x.volume).toBeGreaterThanOrEqual(writable);
    model.live.set(x.key, { info: x, bytes: Buffer.from('x') });
    model.maxKey = x.key;
    await expectModel(store, model);
    await expect(store.compact(99)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('with compactAt, compacts a sealed volume once its garbage passes the share, never the writable one', async () => {
    const logs: string[] = [];
    const store = await openVolumeStore({
      dir,
      volumeSize: 64 * 1024,
      compactAt: 0.5,
      log: (line) => logs.push(line),
    });
    stores.push(store);
    const model = await fill(store, 200);
    const forget = (info: FileInfo) => {
      model.live.delete(info.key);
      model.gone.add(info.key);
    };
    const inVolume = (id: number) =>
      [...model.live.values()].filter((f) => f.info.volume === id).map((f) => f.info);
    const writable = Math.max(...(await store.status()).volumes.map((v) => v.id));
    const bytesBefore = (await store.status()).volumes.find((v) => v.id === 1)?.bytes ?? 0;

    // A third of volume 1 deleted: under the share, nothing happens.
    const first = inVolume(1);
    const third = Math.floor(first.length / 3);
    for (const info of first.slice(0, third)) {
      await store.delete(info.key);
      forget(info);
    }
    await store.sync(); // lets a compaction that wrongly started get going
    expect(logs.filter((line) => line.includes('compact'))).toEqual([]);
    // Most of the writable volume deleted: it is never compacted on its own.
    const newest = inVolume(writable);
    for (const info of newest.slice(0, -1)) {
      await store.delete(info.key);
      forget(info);
    }
    // Past the share in volume 1, by deletes and replaces: it is compacted in the background.
    const [replaced, ...rest] = first.slice(third);
    if (!replaced) throw new Error('volume 1 holds too few files');
    const bytes = Buffer.from('replacement');
    const info = await store.replace(replaced.key, { body: bytes });
    forget(replaced);
    model.live.set(info.key, { info, bytes });
    model.maxKey = info.key;
    for (const gone of rest.slice(0, Math.ceil(first.length / 3))) {
      await store.delete(gone.key);
      forget(gone);
    }
    // Deletes that came while it ran are garbage in the compacted copy: under the share.
    const deadline = Date.now() + 10_000;
    while (!logs.some((line) => line.startsWith('volume 1: compacted')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(logs.join('\n')).toMatch(/volume 1: \d+% garbage \(compact-at 50%\), compacting/);
    expect(logs.join('\n')).toMatch(/volume 1: compacted, \d+ bytes reclaimed/);
    const volume1 = (await store.status()).volumes.find((v) => v.id === 1);
    expect(volume1?.bytes).toBeLessThan(bytesBefore);
    expect(volume1?.garbageRatio).toBeLessThan(0.5);
    const status = await store.status();
    expect(status.volumes.find((v) => v.id === writable)?.garbageRatio).toBeGreaterThan(0.5);
    expect(logs.join('\n')).not.toMatch(new RegExp(`volume ${writable}: .*compact`));
    await expectModel(store, model);
  });

  it('counts as garbage only what compaction reclaims, and compact() leaves volumes without any alone', async () => {
    const store = await open(64 * 1024);
    const model = await fill(store, 200);
    const victim = [...model.live.values()].find((f) => f.info.volume === 2);
    if (!victim) throw new Error('volume 2 holds no file');
    const before = (await store.status()).volumes.find((v) => v.id === 2);
    await store.delete(victim.info.key);
    model.live.delete(victim.info.key);
    model.gone.add(victim.info.key);
    const after = (await store.status()).volumes.find((v) => v.id === 2);
    // The deleted file's needle became garbage; its tombstone (in the writable volume) did not.
    expect((after?.garbageBytes ?? 0) - (before?.garbageBytes ?? 0)).toBe(
      (before?.liveBytes ?? 0) - (after?.liveBytes ?? 0),
    );
    const first = await store.compact();
    expect(first.map((r) => r.volume)).toEqual([2]);
    const volumes = (await store.status()).volumes.length;
    // Nothing left to reclaim anywhere (the writable volume holds a tombstone, which must stay):
    // a second run rewrites nothing and starts no new volume.
    expect(await store.compact()).toEqual([]);
    const status = await store.status();
    expect(status.volumes.length).toBe(volumes);
    expect(status.garbageBytes).toBe(0);
    await expectModel(store, model);
  });

  it('refuses a compactAt outside (0, 1]', async () => {
    for (const compactAt of [0, -0.1, 1.5, Number.NaN]) {
      await expect(openVolumeStore({ dir, compactAt })).rejects.toThrow(/compactAt/);
    }
  });
});
