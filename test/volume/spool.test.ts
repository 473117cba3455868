import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openVolumeStore, type VolumeStore } from '../../adapters/volume/index.ts';
import { StoreError } from '../../storage/index.ts';

const MiB = 1024 * 1024;

/** A body of unknown length, as a chunked upload arrives: `size` bytes in uneven chunks. */
function chunked(size: number, options: { failAfter?: number } = {}): ReadableStream<Uint8Array> {
  let sent = 0;
  let n = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (options.failAfter !== undefined && sent >= options.failAfter) {
        controller.error(new Error('the client went away'));
        return;
      }
      if (sent >= size) {
        controller.close();
        return;
      }
      const length = Math.min(size - sent, 1000 + ((n++ * 7919) % 300_000));
      controller.enqueue(contentAt(sent, length));
      sent += length;
    },
  });
}

/** Byte i of a body is a function of i, so any shifted or lost piece shows. */
function contentAt(start: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((start + i) * 31 + ((start + i) >>> 13)) & 0xff;
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('chunked uploads (no declared length) in the volume store', () => {
  let dir: string;
  let store: VolumeStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'haystack-spool-'));
    store = await openVolumeStore({ dir });
  });

  afterEach(async () => {
    await store.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  const spoolFiles = async () => (await readdir(dir)).filter((name) => name.endsWith('.spool'));

  it('stores bodies under and over the 1 MiB kept in memory byte for byte, and leaves no spool file', async () => {
    for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 9 * MiB + 12_345]) {
      const info = await store.put({ body: chunked(size), contentType: 'video/mp4' });
      expect(info.size).toBe(size);
      const back = await store.get(info.key);
      const bytes =
        back.body instanceof Uint8Array
          ? back.body
          : new Uint8Array(await new Response(back.body).arrayBuffer());
      expect(bytes.byteLength).toBe(size);
      expect(sha256(bytes)).toBe(sha256(contentAt(0, size)));
      expect(back.info.contentType).toBe('video/mp4');
    }
    expect(await spoolFiles()).toEqual([]);
  });

  it('replaces a file with a spooled body', async () => {
    const old = await store.put({ body: new Uint8Array([1, 2, 3]) });
    const info = await store.replace(old.key, { body: chunked(3 * MiB) });
    expect(info.size).toBe(3 * MiB);
    await expect(store.head(old.key)).rejects.toMatchObject({ code: 'not_found' });
    expect((await store.head(info.key)).size).toBe(3 * MiB);
    expect(await spoolFiles()).toEqual([]);
  });

  it('refuses a body over the limit once it passes it: nothing stored, no spool file left', async () => {
    const before = await store.status();
    const refused = store.put({ body: chunked(5 * MiB), limit: 3 * MiB });
    await expect(refused).rejects.toBeInstanceOf(StoreError);
    await expect(refused).rejects.toMatchObject({ code: 'too_large' });
    const after = await store.status();
    expect(after.liveNeedles).toBe(before.liveNeedles);
    expect(after.bytes).toBe(before.bytes);
    expect(await spoolFiles()).toEqual([]);
  });

  it('answers bad_request for a body whose client goes away, before or after spooling starts', async () => {
    const before = await store.status();
    for (const failAfter of [100_000, 4 * MiB]) {
      const put = store.put({ body: chunked(8 * MiB, { failAfter }) });
      await expect(put).rejects.toMatchObject({ code: 'bad_request' });
    }
    const status = await store.status();
    expect(status.liveNeedles).toBe(0);
    expect(status.bytes).toBe(before.bytes); // nothing reserved: the body never reached the volume
    expect(await spoolFiles()).toEqual([]);
  });

  it('removes spool files a crash left behind when the store opens', async () => {
    await store.close();
    const leftover = 'upload-0123456789abcdef.spool';
    await writeFile(join(dir, leftover), 'half an upload');
    await writeFile(join(dir, 'notes.spool'), 'not ours'); // another name: left alone
    store = await openVolumeStore({ dir });
    expect(await readdir(dir)).not.toContain(leftover);
    expect(await readdir(dir)).toContain('notes.spool');
  });
});
