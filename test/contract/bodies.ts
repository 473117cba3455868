import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE, type Key, type PutInput } from '../../storage/index.ts';
import type { StoreContext } from './describe-store.ts';
import {
  chunksOf,
  concatBytes,
  everyByteValue,
  expectBytes,
  expectFile,
  expectInfoShape,
  MiB,
  randomBytes,
  readAll,
  streamOf,
  utf8,
} from './helpers.ts';

/** The contract's `bodies` tests. */
export function testBodies({ fx }: StoreContext): void {
  describe('bodies', () => {
    it('a zero-byte file is a file, whether the body is null, empty bytes or an empty stream', async () => {
      const { store } = fx();
      const before = await store.status();
      const bodies: PutInput[] = [
        { body: null },
        { body: new Uint8Array(0) },
        { body: streamOf([]) },
        { body: streamOf([new Uint8Array(0), new Uint8Array(0)]) },
        { body: null, contentType: 'text/plain', length: 0, limit: 0 },
      ];
      const keys = new Set<Key>();
      for (const input of bodies) {
        const info = await store.put(input);
        expectInfoShape(info);
        expect(info.size).toBe(0);
        await expectFile(
          store,
          info.key,
          new Uint8Array(0),
          input.contentType ?? DEFAULT_CONTENT_TYPE,
          info,
        );
        keys.add(info.key);
      }
      expect(keys.size).toBe(bodies.length);
      const after = await store.status();
      expect(after.liveNeedles).toBe(before.liveNeedles + bodies.length);
    });

    it('a 10 MiB file of random bytes, streamed in 64 KiB chunks, reads back exactly, whole and in ranges', async () => {
      const { store } = fx();
      const bytes = randomBytes(10 * MiB);
      const info = await store.put({
        body: streamOf(chunksOf(bytes, 64 * 1024)),
        contentType: 'application/x-big',
        length: bytes.byteLength,
      });
      expect(info.size).toBe(10 * MiB);
      await expectFile(store, info.key, bytes, 'application/x-big', info);

      const ranges = [
        { start: 0, end: 65_535 },
        { start: 65_535, end: 65_536 + 99 },
        { start: 5 * MiB - 7, end: 6 * MiB + 3 },
        { start: 9 * MiB, end: 10 * MiB - 1 },
        { start: 10 * MiB - 1, end: 10 * MiB - 1 },
      ];
      for (const range of ranges) {
        const read = await store.get(info.key, range);
        expect(read.info).toEqual(info);
        expectBytes(
          await readAll(read.body),
          bytes.subarray(range.start, range.end + 1),
          `range ${range.start}-${range.end}`,
        );
      }
    });

    it('a 10 MiB file given as one Uint8Array reads back exactly', async () => {
      const { store } = fx();
      const bytes = randomBytes(10 * MiB);
      const info = await store.put({ body: bytes });
      await expectFile(store, info.key, bytes, DEFAULT_CONTENT_TYPE, info);
    });

    it('binary content with every byte value survives as bytes and as one-byte chunks', async () => {
      const { store } = fx();
      const bytes = everyByteValue();
      const a = await store.put({ body: bytes, contentType: 'application/octet-stream' });
      const b = await store.put({ body: streamOf(chunksOf(bytes, 1)) });
      await expectFile(store, a.key, bytes, 'application/octet-stream', a);
      await expectFile(store, b.key, bytes, DEFAULT_CONTENT_TYPE, b);
    });

    it('a stream of many uneven chunks, some empty, is stored as their concatenation', async () => {
      const { store } = fx();
      const chunks = Array.from({ length: 1000 }, (_, i) => randomBytes((i * 7919) % 300));
      const info = await store.put({ body: streamOf(chunks, { slow: true }) });
      await expectFile(store, info.key, concatBytes(chunks), DEFAULT_CONTENT_TYPE, info);
    });

    it('a Uint8Array that views part of a larger buffer stores only the viewed bytes', async () => {
      const { store } = fx();
      const backing = randomBytes(10_000);
      const view = backing.subarray(1234, 1234 + 5000);
      const info = await store.put({ body: view });
      expect(info.size).toBe(5000);
      await expectFile(store, info.key, backing.slice(1234, 1234 + 5000), DEFAULT_CONTENT_TYPE);

      const chunks = [
        backing.subarray(3, 10),
        backing.subarray(9000, 9500),
        backing.subarray(1, 2),
      ];
      const streamed = await store.put({ body: streamOf(chunks) });
      await expectFile(store, streamed.key, concatBytes(chunks), DEFAULT_CONTENT_TYPE);

      // A small Node Buffer usually sits at an offset inside a shared pool.
      const pooled = Buffer.from('a pooled buffer');
      const fromBuffer = await store.put({ body: pooled, contentType: 'text/plain' });
      await expectFile(store, fromBuffer.key, utf8('a pooled buffer'), 'text/plain');
    });
  });
}
