import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openVolumeStore, rebuildIndexes, type VolumeStore } from '../../adapters/volume/index.ts';
import type { FileInfo } from '../../storage/index.ts';

let dir: string;
const stores: VolumeStore[] = [];
const VOLUME_SIZE = 4096;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'haystack-rollover-'));
});

afterEach(async () => {
  await Promise.allSettled(stores.splice(0).map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

async function open(): Promise<VolumeStore> {
  const store = await openVolumeStore({ dir, volumeSize: VOLUME_SIZE });
  stores.push(store);
  return store;
}

async function bytesOf(store: VolumeStore, key: number): Promise<Buffer> {
  const { body } = await store.get(key);
  return Buffer.from(body as Uint8Array);
}

describe('volume rollover', () => {
  it('starts a new volume when the writable one is full, and finds every file again', async () => {
    const store = await open();
    const files: Array<{ info: FileInfo; bytes: Buffer }> = [];
    // Concurrent puts race for the space at the end of each volume.
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const bytes = randomBytes(700 + i);
        files.push({ info: await store.put({ body: bytes, contentType: `x/${i}` }), bytes });
      }),
    );
    const big = randomBytes(3 * VOLUME_SIZE); // larger than a volume: gets one of its own
    files.push({ info: await store.put({ body: big }), bytes: big });

    const status = await store.status();
    expect(status.volumes.length).toBeGreaterThan(5);
    expect(status.volumes.map((v) => v.sealed)).toEqual([
      ...status.volumes.slice(1).map(() => true),
      false,
    ]);
    // Sealed because they are older, not because an operator marked them.
    expect(status.volumes.every((v) => !v.readOnly)).toBe(true);
    // The bound every volume but the big file's stays within, as the status page fills them.
    expect(status.volumeSize).toBe(VOLUME_SIZE);
    for (const volume of status.volumes.slice(0, -2)) {
      expect(volume.bytes).toBeLessThanOrEqual(VOLUME_SIZE);
    }
    expect(new Set(files.map((f) => f.info.volume)).size).toBe(status.volumes.length);
    expect(status.liveNeedles).toBe(files.length);

    // Delete and replace files of the first volume: their tombstones land in the newest.
    const [first, second] = files.filter((f) => f.info.volume === 1);
    if (!first || !second) throw new Error('volume 1 should hold two files');
    await store.delete(first.info.key);
    const replacement = await store.replace(second.info.key, { body: Buffer.from('v2') });
    // The big file's volume is over the size already: the next append starts another.
    expect(replacement.volume).toBe(status.volumes.length + 1);

    const live = files.filter((f) => f !== first && f !== second);
    const check = async (s: VolumeStore) => {
      for (const { info, bytes } of live) {
        expect(await s.head(info.key)).toEqual(info);
        expect((await bytesOf(s, info.key)).equals(bytes)).toBe(true);
      }
      await expect(s.get(first.info.key)).rejects.toMatchObject({ code: 'not_found' });
      await expect(s.get(second.info.key)).rejects.toMatchObject({ code: 'not_found' });
      expect((await bytesOf(s, replacement.key)).toString()).toBe('v2');
      expect((await s.status()).nextKey).toBe(replacement.key + 1);
    };
    await check(store);

    await store.close();
    await check(await open());
    for (const s of stores.splice(0)) await s.close();

    for (const name of await readdir(dir)) if (name.endsWith('.idx')) await rm(join(dir, name));
    const report = await rebuildIndexes({ dir });
    expect(report).toMatchObject({ volumes: status.volumes.length + 1, live: live.length + 1 });
    await check(await open());
  });

  it('keeps appending to the newest volume after a restart', async () => {
    const store = await open();
    for (let i = 0; i < 10; i++) await store.put({ body: randomBytes(1000) });
    const before = (await store.status()).volumes.length;
    await store.close();
    const reopened = await open();
    const info = await reopened.put({ body: randomBytes(10) });
    expect(info.volume).toBe(before);
    expect((await stat(join(dir, `${before}.dat`))).size).toBeLessThanOrEqual(VOLUME_SIZE);
  });

  it('status tells a sealed volume from one an operator marked read-only, across a restart', async () => {
    const store = await open();
    await store.put({ body: randomBytes(3000) });
    await store.put({ body: randomBytes(3000) }); // does not fit: volume 2 takes it
    expect((await store.setVolumeReadOnly(2)).readOnly).toBe(true);
    await store.put({ body: randomBytes(10) }); // volume 2 is marked: volume 3 takes it
    const pick = (s: Awaited<ReturnType<VolumeStore['status']>>) =>
      s.volumes.map(({ id, sealed, readOnly }) => ({ id, sealed, readOnly }));
    const expected = [
      { id: 1, sealed: true, readOnly: false },
      { id: 2, sealed: true, readOnly: true },
      { id: 3, sealed: false, readOnly: false },
    ];
    expect(pick(await store.status())).toEqual(expected);
    await store.close();
    expect(pick(await (await open()).status())).toEqual(expected);
  });
});
