import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TelemetryHub } from '../../adapters/telemetry-hub.ts';
import { LiveSet } from '../../adapters/volume/accounting.ts';
import { openVolumeStore, type VolumeStore } from '../../adapters/volume/index.ts';
import { loadVolume } from '../../adapters/volume/load.ts';
import { PackedNeedleMap } from '../../adapters/volume/packed-needle-map.ts';
import type { Volume } from '../../adapters/volume/volume.ts';
import { SUPERBLOCK_SIZE, VolumeFile, ZERO_PIECE } from '../../adapters/volume/volume-file.ts';
import { makeMemoryTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * Zeros written ahead of the writable volume's tail (issue 13 item 2): how far and when, that
 * appends racing the zeros never lose a byte, and that what the store leaves on disk (after a
 * clean stop, a roll-over, fsync `never`) ends at the last needle.
 */
let dir: string;
const opened: Array<{ close(): Promise<void> }> = [];

beforeEach(async () => {
  dir = await makeMemoryTempDir('haystack-presize-');
});

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((x) => x.close()));
  await removeTempDir(dir);
});

async function freshVolume(): Promise<Volume> {
  const file = await VolumeFile.create(path.join(dir, '1.dat'), 1);
  const { volume } = await loadVolume(
    dir,
    file,
    new LiveSet(new PackedNeedleMap()),
    new TelemetryHub(),
  );
  opened.push({
    close: async () => {
      await volume.index.close();
      await volume.file.close();
    },
  });
  return volume;
}

/** Reserves, writes and completes `bytes` (no index entries), returning where they went. */
async function appendTo(volume: Volume, bytes: Buffer): Promise<number> {
  const slot = volume.reserve(bytes.byteLength);
  await volume.write(slot, [bytes]);
  volume.complete(slot, []);
  return slot.offset;
}

async function diskSize(): Promise<number> {
  return (await stat(path.join(dir, '1.dat'))).size;
}

describe('zeros ahead of the tail', () => {
  it('are written a step ahead once less than half a step is left, never past the limit', async () => {
    const volume = await freshVolume();
    const step = 64 * 1024;
    volume.presize({ step, limit: 200 * 1024 });
    await appendTo(volume, randomBytes(1000));
    await volume.settled();
    const firstEnd = SUPERBLOCK_SIZE + 1000 + step;
    expect(volume.file.size).toBe(firstEnd);
    expect(await diskSize()).toBe(firstEnd);
    expect(volume.tail).toBe(SUPERBLOCK_SIZE + 1000);

    // More than half a step left: no zeros.
    await appendTo(volume, randomBytes(step / 2 - 1000));
    await volume.settled();
    expect(volume.file.size).toBe(firstEnd);
    // Less than half: the next step, from the tail.
    await appendTo(volume, randomBytes(1008));
    await volume.settled();
    expect(volume.file.size).toBe(volume.tail + step);
    // Near the limit the zeros stop at it, and past it there are none.
    await appendTo(volume, randomBytes(200 * 1024 - volume.tail - 100));
    await volume.settled();
    expect(volume.file.size).toBe(200 * 1024);
    await appendTo(volume, randomBytes(500));
    await volume.settled();
    expect(volume.file.size).toBe(volume.tail);

    const bytes = await readFile(path.join(dir, '1.dat'));
    expect(bytes.byteLength).toBe(volume.tail);
  });

  it('bytes past the tail are zeros, and a step larger than a piece is written piece by piece', async () => {
    const volume = await freshVolume();
    const step = 2 * ZERO_PIECE + 4096;
    volume.presize({ step, limit: 64 * ZERO_PIECE });
    await appendTo(volume, randomBytes(100));
    await volume.settled();
    expect(volume.file.size).toBe(SUPERBLOCK_SIZE + 100 + step);
    const bytes = await readFile(path.join(dir, '1.dat'));
    expect(bytes.byteLength).toBe(volume.file.size);
    expect(bytes.subarray(volume.tail).every((byte) => byte === 0)).toBe(true);
  });

  it('a write into space being zeroed lands after the zeros, whichever the thread pool finishes first', async () => {
    const volume = await freshVolume();
    const zeroing = volume.file.extendWithZeros(SUPERBLOCK_SIZE + ZERO_PIECE);
    const early = randomBytes(4096);
    const late = randomBytes(100);
    expect(volume.file.zeroingOverlaps(SUPERBLOCK_SIZE, SUPERBLOCK_SIZE + 4096)).toBe(true);
    expect(
      volume.file.zeroingOverlaps(SUPERBLOCK_SIZE + ZERO_PIECE, SUPERBLOCK_SIZE + ZERO_PIECE + 8),
    ).toBe(false);
    // Both go to the thread pool at once; the small write would finish long before the zeros.
    await Promise.all([
      zeroing,
      volume.file.write([early], SUPERBLOCK_SIZE),
      volume.file.write([late], SUPERBLOCK_SIZE + ZERO_PIECE - 100),
    ]);
    expect(volume.file.zeroingOverlaps(SUPERBLOCK_SIZE, SUPERBLOCK_SIZE + 4096)).toBe(false);
    const file = await readFile(path.join(dir, '1.dat'));
    expect(file.byteLength).toBe(SUPERBLOCK_SIZE + ZERO_PIECE);
    expect(file.subarray(SUPERBLOCK_SIZE, SUPERBLOCK_SIZE + 4096).equals(early)).toBe(true);
    expect(file.subarray(SUPERBLOCK_SIZE + ZERO_PIECE - 100).equals(late)).toBe(true);
    expect(
      file
        .subarray(SUPERBLOCK_SIZE + 4096, SUPERBLOCK_SIZE + ZERO_PIECE - 100)
        .every((b) => b === 0),
    ).toBe(true);
    // Zeros never go over bytes written or being written: the next ones start past them.
    expect(await volume.file.extendWithZeros(SUPERBLOCK_SIZE + ZERO_PIECE)).toBe(0);
  });

  it('appends racing the zeros keep every byte: writes into space being zeroed wait for it', async () => {
    const volume = await freshVolume();
    // Small steps: zeros are being written under most appends below.
    volume.presize({ step: 3 * ZERO_PIECE, limit: 64 * ZERO_PIECE });
    const written: Array<{ offset: number; bytes: Buffer }> = [];
    for (let turn = 0; turn < 12; turn++) {
      // Many slots in one turn of the event loop (one writev), and some of them large (through
      // the thread pool), with the zero steps they start running beside them.
      const batch = Array.from({ length: 40 }, (_, i) =>
        randomBytes(i % 13 === 0 ? 300 * 1024 : 100 + ((turn * 40 + i) % 5000)),
      );
      const offsets = await Promise.all(batch.map((bytes) => appendTo(volume, bytes)));
      offsets.forEach((offset, i) => {
        written.push({ offset, bytes: batch[i] as Buffer });
      });
      await volume.flush(1);
    }
    await volume.settled();
    const file = await readFile(path.join(dir, '1.dat'));
    for (const { offset, bytes } of written) {
      expect(file.subarray(offset, offset + bytes.byteLength).equals(bytes), `at ${offset}`).toBe(
        true,
      );
    }
    // The appends may have outrun the zeros; whatever lies past the tail is zeros.
    expect(file.subarray(volume.tail).every((byte) => byte === 0)).toBe(true);
  });

  it('a sealed volume is cut to its tail once its writes are done', async () => {
    const volume = await freshVolume();
    volume.presize({ step: 256 * 1024, limit: 64 * ZERO_PIECE });
    const slot = volume.reserve(5000);
    const writing = volume.write(slot, [randomBytes(5000)]);
    const sealing = volume.seal();
    await writing;
    volume.complete(slot, []);
    await sealing;
    expect(volume.file.size).toBe(SUPERBLOCK_SIZE + 5000);
    expect(await diskSize()).toBe(SUPERBLOCK_SIZE + 5000);
    // No more zeros once sealed.
    await appendTo(volume, randomBytes(10));
    await volume.settled();
    expect(volume.file.size).toBe(volume.tail);
  });
});

describe('a flush that fails', () => {
  it('fails every later flush of the volume: the kernel reports a lost write once, maybe to the flush of zeros', async () => {
    const volume = await freshVolume();
    const file = volume.file;
    const datasync = file.datasync.bind(file);
    let failures = 1;
    file.datasync = () => (failures-- > 0 ? Promise.reject(new Error('EIO')) : datasync());
    await appendTo(volume, randomBytes(100));
    await expect(volume.flush(1)).rejects.toThrow('EIO');
    // The disk's next flush would succeed over the loss: the volume's does not.
    await expect(volume.flush(1)).rejects.toThrow('EIO');
    await datasync();
  });
});

describe('the store with zeros ahead', () => {
  async function open(options: Parameters<typeof openVolumeStore>[0]): Promise<VolumeStore> {
    const store = await openVolumeStore(options);
    opened.push(store);
    return store;
  }

  it('status counts needles, not zeros; a clean stop and a roll-over leave volumes ending at their last needle', async () => {
    const volumeSize = 64 * 1024;
    const store = await open({ dir, volumeSize, presizeStep: 16 * 1024 });
    const files = new Map<number, Buffer>();
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const body = randomBytes(1000 + i * 37);
        files.set((await store.put({ body })).key, body);
      }),
    );
    const status = await store.status();
    expect(status.volumes.length).toBeGreaterThan(1);
    for (const volume of status.volumes) expect(volume.bytes).toBeLessThanOrEqual(volumeSize);
    const needleBytes = status.volumes.reduce((total, v) => total + v.bytes, 0);
    expect(status.bytes).toBe(needleBytes);
    await store.close();
    for (const volume of status.volumes) {
      expect((await stat(path.join(dir, `${volume.id}.dat`))).size, `volume ${volume.id}`).toBe(
        volume.bytes,
      );
    }
    const reopened = await open({ dir, volumeSize });
    for (const [key, body] of files) {
      const { body: read } = await reopened.get(key);
      expect(Buffer.from(read as Uint8Array).equals(body)).toBe(true);
    }
    expect((await reopened.status()).bytes).toBe(needleBytes);
  });

  it('with fsync never (no flush per write to save) and with presizeStep 0, no zeros are written', async () => {
    for (const options of [{ fsync: 'never' as const }, { presizeStep: 0 }]) {
      const store = await open({ dir, ...options });
      for (let i = 0; i < 20; i++) await store.put({ body: randomBytes(3000) });
      const { bytes } = await store.status();
      // Nothing runs in the background without zeros: the file is exactly the needles.
      expect(await diskSize(), JSON.stringify(options)).toBe(bytes);
      await store.close();
    }
  });

  it('refuses a presizeStep that is not a byte count', async () => {
    await expect(openVolumeStore({ dir, presizeStep: -1 })).rejects.toThrow(/presizeStep/);
    await expect(openVolumeStore({ dir, presizeStep: 1.5 })).rejects.toThrow(/presizeStep/);
  });
});
