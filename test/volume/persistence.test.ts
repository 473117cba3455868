import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openVolumeStore, rebuildIndexes, type VolumeStore } from '../../adapters/volume/index.ts';
import type { FileInfo } from '../../storage/index.ts';

let dir: string;
const open: VolumeStore[] = [];
let logs: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'haystack-persist-'));
  logs = [];
});

afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

async function openStore(): Promise<VolumeStore> {
  const store = await openVolumeStore({ dir, log: (line) => logs.push(line) });
  open.push(store);
  return store;
}

async function reopen(store: VolumeStore): Promise<VolumeStore> {
  await store.close();
  return openStore();
}

interface Stored {
  info: FileInfo;
  bytes: Buffer;
}

async function putRandom(store: VolumeStore, size: number, contentType?: string): Promise<Stored> {
  const bytes = randomBytes(size);
  const info = await store.put({ body: bytes, ...(contentType ? { contentType } : {}) });
  return { info, bytes };
}

async function readBytes(store: VolumeStore, key: number): Promise<Buffer> {
  const { body } = await store.get(key);
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function flipBit(bytes: Buffer, at: number, mask: number): void {
  bytes.writeUInt8(bytes.readUInt8(at) ^ mask, at);
}

/** A typical history: files of several sizes and types, one deleted, one replaced. */
async function history(store: VolumeStore) {
  const kept = [
    await putRandom(store, 0, 'text/plain'),
    await putRandom(store, 1000, 'image/png'),
    await putRandom(store, 70_000),
  ];
  const deleted = await putRandom(store, 500);
  await store.delete(deleted.info.key);
  const replaced = await putRandom(store, 300, 'text/html');
  const replacement = Buffer.from('replacement');
  const info = await store.replace(replaced.info.key, {
    body: replacement,
    contentType: 'text/css',
  });
  kept.push({ info, bytes: replacement });
  return { kept, gone: [deleted.info.key, replaced.info.key], maxKey: info.key };
}

async function expectHistory(store: VolumeStore, h: Awaited<ReturnType<typeof history>>) {
  for (const { info, bytes } of h.kept) {
    expect(await store.head(info.key)).toEqual(info);
    expect((await readBytes(store, info.key)).equals(bytes)).toBe(true);
  }
  for (const key of h.gone) {
    await expect(store.get(key)).rejects.toMatchObject({ code: 'not_found' });
  }
  const status = await store.status();
  expect(status.liveNeedles).toBe(h.kept.length);
  expect(status.nextKey).toBeGreaterThan(h.maxKey);
  const next = await store.put({ body: Buffer.from('next') });
  expect(next.key).toBeGreaterThan(h.maxKey);
}

describe('volume store persistence', () => {
  it('keeps everything across close and reopen', async () => {
    const store = await openStore();
    const h = await history(store);
    await expectHistory(await reopen(store), h);
    expect(logs).toEqual([]);
  });

  it('rebuilds the index by scanning when the .idx files are gone', async () => {
    const store = await openStore();
    const h = await history(store);
    await store.close();
    await rm(join(dir, '1.idx'));
    await expectHistory(await openStore(), h);
    expect(logs.join('\n')).toMatch(/no usable index/);
  });

  it('reload rebuilds identical indexes from the volumes alone', async () => {
    const store = await openStore();
    const h = await history(store);
    await store.close();
    const before = await readFile(join(dir, '1.idx'));
    await rm(join(dir, '1.idx'));
    const report = await rebuildIndexes({ dir });
    expect(report).toMatchObject({ volumes: 1, needles: 8, live: 4, deleted: 2, corrupt: 0 });
    expect(await readFile(join(dir, '1.idx'))).toEqual(before);
    await expectHistory(await openStore(), h);
  });

  it('catches up an index that lags behind the volume', async () => {
    const store = await openStore();
    const h = await history(store);
    await store.close();
    const full = (await stat(join(dir, '1.idx'))).size;
    await truncate(join(dir, '1.idx'), 16 + 2 * 16 + 5); // two entries and a torn third
    await expectHistory(await openStore(), h);
    for (const s of open) await s.close();
    expect((await stat(join(dir, '1.idx'))).size).toBe(full + 16); // + the entry of 'next'
    expect(logs).toEqual([]);
  });

  it('trusts an index up to its first implausible entry, and rebuilds the rest by scanning', async () => {
    const store = await openStore();
    const h = await history(store);
    await store.close();
    const path = join(dir, '1.idx');
    const good = await readFile(path);
    const volume = await readFile(join(dir, '1.dat')); // expectHistory adds a file: undo it
    const entryOffset = (entry: number) => 16 + entry * 16 + 8; // offset / 8, u32
    const damages: Array<[string, (index: Buffer) => void]> = [
      ['out of volume order', (index) => index.writeUInt32LE(0, entryOffset(3))],
      ['past the volume end', (index) => index.writeUInt32LE(2 ** 31, entryOffset(3))],
    ];
    for (const [, damage] of damages) {
      const index = Buffer.from(good);
      damage(index);
      await writeFile(path, index);
      await writeFile(join(dir, '1.dat'), volume);
      logs = [];
      const reopened = await openStore();
      await expectHistory(reopened, h);
      await reopened.close();
      expect(logs.join('\n')).toMatch(/index trusted for 3 entries, the rest rebuilt by scanning/);
      // The index was cut at the bad entry and completed from the scan: whole again.
      expect((await readFile(path)).subarray(0, good.byteLength)).toEqual(good);
    }
  });
  it('ignores an index file made for another volume', async () => {
    const store = await openStore();
    const h = await history(store);
    await store.close();
    const otherDir = await mkdtemp(join(tmpdir(), 'haystack-other-'));
    try {
      const other = await openVolumeStore({ dir: otherDir });
      await other.put({ body: Buffer.from('elsewhere') });
      await other.close();
      await writeFile(join(dir, '1.idx'), await readFile(join(otherDir, '1.idx')));
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
    await expectHistory(await openStore(), h);
  });

  it('cuts a torn tail at every byte of the last needle and keeps the needles before it', async () => {
    const store = await openStore();
    const first = await putRandom(store, 100, 'a/b');
    const second = await putRandom(store, 200);
    const last = await putRandom(store, 50, 'c/d');
    await store.close();
    const volume = join(dir, '1.dat');
    const original = await readFile(volume);
    const lastEnd = original.byteLength;
    for (let cut = last.info.offset; cut < lastEnd; cut++) {
      await writeFile(volume, original.subarray(0, cut));
      const reopened = await openStore();
      expect((await readBytes(reopened, first.info.key)).equals(first.bytes)).toBe(true);
      expect((await readBytes(reopened, second.info.key)).equals(second.bytes)).toBe(true);
      await expect(reopened.get(last.info.key)).rejects.toMatchObject({ code: 'not_found' });
      await reopened.close();
      open.pop();
      if (cut > last.info.offset) expect(logs.pop()).toMatch(/cut a torn tail/);
      expect((await stat(volume)).size).toBe(last.info.offset);
    }
  });

  it('answers corrupt for a flipped data byte, serves the others, and reload skips it', async () => {
    const store = await openStore();
    const a = await putRandom(store, 300);
    const b = await putRandom(store, 300);
    const c = await putRandom(store, 300);
    await store.close();
    const volume = join(dir, '1.dat');
    const bytes = await readFile(volume);
    flipBit(bytes, b.info.offset + 32 + 24 + 100, 0x04); // inside b's data
    await writeFile(volume, bytes);

    const reopened = await openStore();
    await expect(reopened.get(b.info.key)).rejects.toMatchObject({ code: 'corrupt' });
    expect((await readBytes(reopened, a.info.key)).equals(a.bytes)).toBe(true);
    expect((await readBytes(reopened, c.info.key)).equals(c.bytes)).toBe(true);
    await reopened.close();

    const report = await rebuildIndexes({ dir });
    expect(report).toMatchObject({ needles: 2, live: 2, corrupt: 1 });
    expect(report.problems[0]).toMatchObject({ volume: 1, offset: b.info.offset });
    expect(report.problems[0]?.message).toMatch(new RegExp(`key ${b.info.key}`));
    const rebuilt = await openStore();
    await expect(rebuilt.get(b.info.key)).rejects.toMatchObject({ code: 'not_found' });
    expect((await readBytes(rebuilt, c.info.key)).equals(c.bytes)).toBe(true);
    // The damaged needle's key is still never handed out again.
    expect((await rebuilt.put({ body: Buffer.from('x') })).key).toBeGreaterThan(c.info.key);
  });

  it('steps over a needle whose header is damaged, finding the next one', async () => {
    const store = await openStore();
    const a = await putRandom(store, 100);
    const b = await putRandom(store, 5000);
    const c = await putRandom(store, 100, 'text/plain');
    await store.close();
    const volume = join(dir, '1.dat');
    const bytes = await readFile(volume);
    flipBit(bytes, b.info.offset + 9, 0x80); // b's key
    await writeFile(volume, bytes);
    await rm(join(dir, '1.idx'));

    const reopened = await openStore();
    expect(logs.join('\n')).toMatch(/damaged bytes at offset/);
    expect((await readBytes(reopened, a.info.key)).equals(a.bytes)).toBe(true);
    expect(await reopened.head(c.info.key)).toEqual(c.info);
    await expect(reopened.get(b.info.key)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('steps silently over the space of an aborted upload', async () => {
    const store = await openStore();
    const size = 3 * 1024 * 1024;
    let sent = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size / 2) {
          controller.error(new Error('client went away'));
          return;
        }
        sent += 256 * 1024;
        controller.enqueue(randomBytes(256 * 1024));
      },
    });
    const slow = store.put({ body: failing, length: size });
    const after = await putRandom(store, 100); // reserved after the failing upload
    await expect(slow).rejects.toMatchObject({ code: 'bad_request' });
    await store.close();
    await rm(join(dir, '1.idx'));
    const reopened = await openStore();
    expect(logs).toEqual(['volume 1: no usable index, rebuilt it by scanning']);
    expect((await readBytes(reopened, after.info.key)).equals(after.bytes)).toBe(true);
    expect((await reopened.status()).liveNeedles).toBe(1);
    expect((await rebuildIndexes({ dir: join(dir) }).catch((e) => e)).code).toBe('locked');
  });
});

describe('data directory lock', () => {
  it('refuses a second store on the same directory until the first closes', async () => {
    const store = await openStore();
    await expect(openVolumeStore({ dir })).rejects.toMatchObject({ code: 'locked' });
    await expect(rebuildIndexes({ dir })).rejects.toMatchObject({ code: 'locked' });
    await store.close();
    await (await openStore()).close();
  });

  it('refuses a lock held by another live process', async () => {
    await writeFile(join(dir, 'LOCK'), `${process.ppid}\n`);
    await expect(openVolumeStore({ dir })).rejects.toMatchObject({
      code: 'locked',
      message: expect.stringContaining(String(process.ppid)),
    });
  });

  it('takes over a lock left by a process that is gone', async () => {
    await writeFile(join(dir, 'LOCK'), '2147483646\n');
    const store = await openStore();
    expect(await readFile(join(dir, 'LOCK'), 'latin1')).toBe(`${process.pid}\n`);
    await store.close();
  });
});
