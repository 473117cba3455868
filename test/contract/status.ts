import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE, type FileInfo } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import { expectFile, expectStatusConsistent, expectSyncReport, randomBytes } from './helpers.ts';

/** The contract's `status and sync` tests. */
export function testStatusAndSync({ fx }: StoreContext): void {
  describe('status and sync', () => {
    it('a fresh store is empty', async () => {
      const status = await fx().store.status();
      expectStatusConsistent(status);
      expect(status).toMatchObject({ liveNeedles: 0, deletedNeedles: 0, liveBytes: 0 });
      expect(status.nextKey).toBeGreaterThanOrEqual(1);
    });

    it('counts move with put (+1 live), replace (+1 deleted) and delete (+1 deleted, -1 live)', async () => {
      const { store } = fx();
      const s0 = await store.status();

      const a = await store.put({ body: randomBytes(1000), contentType: 'x/a' });
      const s1 = await store.status();
      expectStatusConsistent(s1);
      expect(a.key).toBe(s0.nextKey);
      expect(s1).toMatchObject({ liveNeedles: 1, deletedNeedles: 0 });
      expect(s1.liveBytes - s0.liveBytes).toBeGreaterThanOrEqual(1000);
      expect(s1.nextKey).toBeGreaterThan(a.key);
      const aBytes = s1.liveBytes - s0.liveBytes;

      const b = await store.put({ body: randomBytes(3000), contentType: 'x/b' });
      const s2 = await store.status();
      expectStatusConsistent(s2);
      expect(s2).toMatchObject({ liveNeedles: 2, deletedNeedles: 0 });
      expect(s2.liveBytes - s1.liveBytes).toBeGreaterThanOrEqual(3000);
      expect(s2.nextKey).toBeGreaterThan(b.key);

      // Same size, same type: the live bytes stay as they were.
      const c = await store.replace(b.key, { body: randomBytes(3000), contentType: 'x/b' });
      const s3 = await store.status();
      expectStatusConsistent(s3);
      expect(s3).toMatchObject({ liveNeedles: 2, deletedNeedles: 1, liveBytes: s2.liveBytes });
      expect(s3.nextKey).toBeGreaterThan(c.key);
      expect(s3.garbageBytes).toBeGreaterThanOrEqual(s2.garbageBytes);

      await store.delete(a.key);
      const s4 = await store.status();
      expectStatusConsistent(s4);
      expect(s4).toMatchObject({
        liveNeedles: 1,
        deletedNeedles: 2,
        liveBytes: s3.liveBytes - aBytes,
        nextKey: s3.nextKey,
      });
      expect(s4.garbageBytes).toBeGreaterThanOrEqual(s3.garbageBytes);

      await store.delete(c.key);
      const s5 = await store.status();
      expectStatusConsistent(s5);
      expect(s5).toMatchObject({
        liveNeedles: 0,
        deletedNeedles: 3,
        liveBytes: s0.liveBytes,
        nextKey: s3.nextKey,
      });
      expect(s5.garbageBytes).toBeGreaterThanOrEqual(s4.garbageBytes);
    });

    it('a zero-byte file counts as a live needle', async () => {
      const { store } = fx();
      const info = await store.put({ body: null });
      expect((await store.status()).liveNeedles).toBe(1);
      await store.delete(info.key);
      expect(await store.status()).toMatchObject({ liveNeedles: 0, deletedNeedles: 1 });
    });

    it('files sit at distinct places inside the volumes status lists', async ({ skip }) => {
      const { store } = fx();
      const infos: FileInfo[] = [];
      for (let i = 0; i < 20; i++) {
        infos.push(await store.put({ body: randomBytes((i * 397) % 3000), contentType: `x/${i}` }));
      }
      await store.delete(infos[3]?.key ?? expect.fail());
      const live = infos.filter((_, i) => i !== 3);
      const status = await store.status();
      expectStatusConsistent(status);
      if (status.volumes.length === 0) skip('the adapter reports no volumes');
      if (live.every((info) => info.offset === 0)) {
        skip('the adapter reports no offsets (a cluster: each replica has its own)');
      }

      const volumes = new Map(status.volumes.map((volume) => [volume.id, volume]));
      expect(volumes.size, 'volume ids are unique').toBe(status.volumes.length);
      const places = new Set<string>();
      for (const info of live) {
        const volume = volumes.get(info.volume);
        expect(volume, `volume ${info.volume} of key ${info.key} is listed`).toBeDefined();
        expect(info.offset + info.size).toBeLessThanOrEqual(volume?.bytes ?? 0);
        places.add(`${info.volume}:${info.offset}`);
      }
      expect(places.size, 'no two live files start at the same place').toBe(live.length);
    });

    it('sync resolves with a report and changes nothing', async () => {
      const { store } = fx();
      const empty = await store.sync();
      expectSyncReport(empty);

      const files: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
      for (let i = 0; i < 3; i++) {
        const bytes = randomBytes(100 * i);
        files.push({ info: await store.put({ body: bytes }), bytes });
      }
      await store.delete(files[0]?.info.key ?? expect.fail());
      const before = await store.status();
      expectSyncReport(await store.sync());
      const after = await store.status();
      expect(after).toMatchObject({
        liveNeedles: before.liveNeedles,
        deletedNeedles: before.deletedNeedles,
        liveBytes: before.liveBytes,
        nextKey: before.nextKey,
      });
      for (const { info, bytes } of files.slice(1)) {
        await expectFile(store, info.key, bytes, DEFAULT_CONTENT_TYPE, info);
      }
    });
  });
}
