import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { VolumeStore } from '../../adapters/volume/index.ts';
import type { PutInput, ReplicaWriter } from '../../storage/index.ts';
import {
  chunksOf,
  expectBytes,
  expectCode,
  randomBytes,
  readAll,
  streamOf,
  utf8,
} from '../contract/helpers.ts';
import { useVolumeStores } from '../support/volume-stores.ts';

/**
 * The volume store's replica writes beyond the contract (test/contract/replicas.ts): the paths of
 * `put` (spooled, past the streaming cap), a retry checked against the bytes on disk, and keys
 * after compaction and restart.
 */

const MiB = 1024 * 1024;

const { dir, open } = useVolumeStores('haystack-replicas-');

function replicas(store: VolumeStore): ReplicaWriter {
  const writer = store.capabilities.replicas;
  if (!writer) throw new Error('the volume store offers no replica writes');
  return writer;
}

const chunked = (bytes: Uint8Array): PutInput => ({
  body: streamOf(chunksOf(bytes, 64 * 1024)),
  contentType: 'video/mp4',
});

describe('replica writes on the volume store', () => {
  it('spools a large chunked body, and a streamed retry is checked byte by byte', async () => {
    const store = await open();
    const bytes = randomBytes(2 * MiB + 5);
    const info = await replicas(store).putReplica(900, 0x1234, chunked(bytes));
    expect(info).toMatchObject({ key: 900, cookie: 0x1234, size: bytes.byteLength });
    expect((await readdir(dir())).filter((name) => name.endsWith('.spool'))).toEqual([]);
    const before = await store.status();

    expect(await replicas(store).putReplica(900, 0x1234, chunked(bytes.slice()))).toEqual(info);
    const flipped = bytes.slice();
    flipped[MiB] = (flipped[MiB] as number) ^ 1;
    await expectCode(replicas(store).putReplica(900, 0x1234, chunked(flipped)), 'conflict');
    const longer = new Uint8Array(bytes.byteLength + 1);
    longer.set(bytes);
    await expectCode(replicas(store).putReplica(900, 0x1234, chunked(longer)), 'conflict');

    expect(await store.status()).toEqual(before);
    expectBytes(await readAll((await store.get(900, undefined, 0x1234)).body), bytes);
  });

  it('past the streaming cap, a declared large body is spooled and stored all the same', async () => {
    const store = await open({ maxStreamingBytes: 0 });
    const bytes = randomBytes(MiB + 100);
    const input = { ...chunked(bytes), length: bytes.byteLength };
    const info = await replicas(store).putReplica(3, 7, input);
    expect(info.size).toBe(bytes.byteLength);
    expectBytes(await readAll((await store.get(3)).body), bytes);
  });

  it('a retry after compaction moved the file answers the file where it now lies', async () => {
    const store = await open();
    const junk = await store.put({ body: randomBytes(50_000) });
    const bytes = randomBytes(4000);
    const stored = await replicas(store).putReplica(junk.key + 10, 99, {
      body: bytes,
      contentType: 'a/b',
    });
    await store.delete(junk.key);
    await store.compact();
    const moved = await store.head(junk.key + 10);
    expect(moved.offset).toBeLessThan(stored.offset);
    const again = await replicas(store).putReplica(junk.key + 10, 99, {
      body: bytes,
      contentType: 'a/b',
    });
    expect(again).toEqual(moved);
  });

  it('put stays above a replica key after it is deleted and the store restarts', async () => {
    let store = await open();
    await replicas(store).putReplica(10_000, 1, { body: utf8('high') });
    await store.delete(10_000);
    await store.close();
    store = await open();
    expect((await store.status()).nextKey).toBe(10_001);
    expect((await store.put({ body: utf8('next') })).key).toBe(10_001);
    await expectCode(store.get(10_000), 'not_found');
  });

  it('is refused on a read-only server and after close', async () => {
    const writable = await open();
    await writable.close();
    await expectCode(replicas(writable).putReplica(5, 1, { body: utf8('x') }), 'closed');
    const readOnly = await open({ readOnly: true });
    await expectCode(replicas(readOnly).putReplica(5, 1, { body: utf8('x') }), 'read_only');
  });
});
