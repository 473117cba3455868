import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type BlobStore,
  DEFAULT_CONTENT_TYPE,
  type FileInfo,
  isStoreError,
  type Key,
  MAX_KEY,
  type PutInput,
  type StoreStatus,
} from '../../storage/index.ts';
import {
  chunksOf,
  concatBytes,
  endlessStream,
  everyByteValue,
  expectBytes,
  expectCode,
  probeStream,
  randomBytes,
  readAll,
  streamOf,
  utf8,
} from './helpers.ts';

/**
 * What an adapter's test file hands the suite. `open` is called before every test and must give
 * an empty store of its own. The suite closes every store that `reopen` gives it; `cleanup` runs
 * after every test and releases the rest (temp dirs; closing `store` again must be harmless).
 */
export interface StoreFixture {
  store: BlobStore;
  cleanup: () => Promise<void>;
  /**
   * For persistent adapters: a fresh store over the same data. It closes nothing itself; the suite
   * closes the previous store first. When present, the close-and-reopen checks run.
   */
  reopen?: () => Promise<BlobStore>;
}

const MiB = 1024 * 1024;

/** The contract of the storage port, run against one adapter. */
export function describeStore(name: string, open: () => Promise<StoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fixture: StoreFixture | undefined;
    let reopened: BlobStore[] = [];

    beforeEach(async () => {
      fixture = await open();
      reopened = [];
    });

    afterEach(async () => {
      for (const store of reopened) await store.close();
      await fixture?.cleanup();
      fixture = undefined;
    });

    function fx(): StoreFixture {
      if (!fixture) throw new Error('the fixture did not open');
      return fixture;
    }

    /** Closes `store` and opens another over the same data; the suite closes it at the end. */
    async function closeAndReopen(store: BlobStore): Promise<BlobStore> {
      const reopen = fx().reopen;
      if (!reopen) throw new Error('the fixture has no reopen');
      await store.close();
      const next = await reopen();
      reopened.push(next);
      return next;
    }

    describe('put, get and head', () => {
      it('put returns the file info; get returns exactly the bytes and that info; head agrees', async () => {
        const { store } = fx();
        const bytes = randomBytes(1000);
        const info = await store.put({ body: bytes, contentType: 'image/png' });
        expectInfoShape(info);
        expect(info).toMatchObject({ size: 1000, contentType: 'image/png' });

        const read = await store.get(info.key);
        expect(read.info).toEqual(info);
        expectBytes(await readAll(read.body), bytes);
        expect(await store.head(info.key)).toEqual(info);
      });

      it('files are independent: each key reads back its own bytes, in any order', async () => {
        const { store } = fx();
        const sizes = [1, 7, 8, 9, 4095, 4096, 4097, 100_000];
        const files: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
        for (const size of sizes) {
          const bytes = randomBytes(size);
          files.push({
            info: await store.put({ body: bytes, contentType: `x/size-${size}` }),
            bytes,
          });
        }
        for (const { info, bytes } of files.reverse()) {
          await expectFile(store, info.key, bytes, info.contentType, info);
        }
      });

      it('concurrent reads of one file all get the same bytes and info', async () => {
        const { store } = fx();
        const bytes = randomBytes(300_000);
        const info = await store.put({ body: bytes, contentType: 'application/pdf' });
        const reads = await Promise.all(Array.from({ length: 20 }, () => store.get(info.key)));
        for (const read of reads) {
          expect(read.info).toEqual(info);
          expectBytes(await readAll(read.body), bytes);
        }
      });

      it('the stored bytes do not change when the caller reuses its buffers', async () => {
        const { store } = fx();
        const bytes = randomBytes(2048);
        const original = bytes.slice();
        const a = await store.put({ body: bytes });
        bytes.fill(0);

        const chunks = chunksOf(randomBytes(4096), 512);
        const sent = concatBytes(chunks);
        const b = await store.put({ body: streamOf(chunks) });
        for (const chunk of chunks) chunk.fill(7);

        await expectFile(store, a.key, original, DEFAULT_CONTENT_TYPE);
        await expectFile(store, b.key, sent, DEFAULT_CONTENT_TYPE);
      });

      it('changing what put, get and head return does not change the stored file', async () => {
        const { store } = fx();
        const bytes = randomBytes(100);
        const info = await store.put({ body: bytes, contentType: 'text/plain' });
        const original = { ...info };
        Object.assign(info, { size: 1, contentType: 'x/changed', etag: '"changed"' });

        const read = await store.get(original.key);
        expect(read.info).toEqual(original);
        (await readAll(read.body)).fill(0);
        Object.assign(read.info, { size: 2, contentType: 'x/changed-too' });
        Object.assign(await store.head(original.key), { size: 3, offset: 12345 });

        await expectFile(store, original.key, bytes, 'text/plain', original);
      });
    });

    describe('keys', () => {
      it('are safe integers from 1 up, strictly increasing and unique', async () => {
        const { store } = fx();
        const keys: Key[] = [];
        for (let i = 0; i < 50; i++) {
          const info = await store.put({ body: randomBytes(i) });
          expectInfoShape(info);
          if (keys.length > 0) expect(info.key).toBeGreaterThan(Math.max(...keys));
          keys.push(info.key);
        }
        expect(new Set(keys).size).toBe(keys.length);
      });

      it('the key put hands out is the nextKey status announced', async () => {
        const { store } = fx();
        for (let i = 0; i < 3; i++) {
          const before = await store.status();
          const info = await store.put({ body: randomBytes(10) });
          expect(info.key).toBe(before.nextKey);
          expect((await store.status()).nextKey).toBeGreaterThan(info.key);
        }
      });

      it('are never reused after a delete or a replace', async () => {
        const { store } = fx();
        const a = await store.put({ body: randomBytes(10) });
        const b = await store.put({ body: randomBytes(10) });
        await store.delete(b.key); // the highest key so far
        const c = await store.put({ body: randomBytes(10) });
        expect(c.key).toBeGreaterThan(b.key);
        const d = await store.replace(c.key, { body: randomBytes(10) });
        expect(d.key).toBeGreaterThan(c.key);
        await store.delete(d.key);
        await store.delete(a.key);
        const e = await store.put({ body: randomBytes(10) });
        expect(e.key).toBeGreaterThan(d.key);
        expect((await store.status()).nextKey).toBeGreaterThan(e.key);
      });

      it('a valid key that was never handed out is not_found', async () => {
        const { store } = fx();
        const info = await store.put({ body: randomBytes(10) });
        const before = await store.status();
        for (const key of [before.nextKey, before.nextKey + 1, info.key + 2 ** 32, MAX_KEY]) {
          await expectCode(store.get(key), 'not_found');
          await expectCode(store.get(key, { start: 0, end: 0 }), 'not_found');
          await expectCode(store.head(key), 'not_found');
          await expectCode(store.delete(key), 'not_found');
          await expectCode(store.replace(key, { body: randomBytes(3) }), 'not_found');
        }
        await expectNothingStored(store, before);
      });

      it('a number that is not a valid key is refused and never reaches another file', async () => {
        const { store } = fx();
        const files: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
        for (let i = 0; i < 3; i++) {
          const bytes = randomBytes(20 + i);
          files.push({ info: await store.put({ body: bytes }), bytes });
        }
        const k = files[1]?.info.key ?? expect.fail('no file');
        const before = await store.status();
        const notKeys = [
          0,
          -1,
          -k,
          k + 0.5,
          k - 0.5,
          Number.NaN,
          Number.POSITIVE_INFINITY,
          Number.NEGATIVE_INFINITY,
          MAX_KEY + 1,
          2 ** 64 + k,
        ];
        for (const key of notKeys) {
          await expectCode(store.get(key), 'bad_key', 'not_found');
          await expectCode(store.head(key), 'bad_key', 'not_found');
          await expectCode(store.delete(key), 'bad_key', 'not_found');
          await expectCode(store.replace(key, { body: randomBytes(3) }), 'bad_key', 'not_found');
        }
        await expectNothingStored(store, before);
        for (const { info, bytes } of files) {
          await expectFile(store, info.key, bytes, DEFAULT_CONTENT_TYPE, info);
        }
      });
    });

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

    describe('content types', () => {
      const types = [
        'text/plain; charset=utf-8',
        'image/jpeg',
        'application/vnd.api+json',
        'Text/HTML; Charset=ISO-8859-1',
        'application/json;charset=UTF-8',
        'multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW',
        'video/mp4; codecs="avc1.42E01E, mp4a.40.2"',
      ];

      it('are stored exactly as given, parameters and case included', async () => {
        const { store } = fx();
        for (const contentType of types) {
          const bytes = randomBytes(64);
          const info = await store.put({ body: bytes, contentType });
          expect(info.contentType).toBe(contentType);
          await expectFile(store, info.key, bytes, contentType, info);
        }
      });

      it('default to application/octet-stream when none is given, for put and replace', async () => {
        const { store } = fx();
        const a = await store.put({ body: randomBytes(5) });
        const b = await store.put({ body: null });
        expect(a.contentType).toBe(DEFAULT_CONTENT_TYPE);
        expect(b.contentType).toBe(DEFAULT_CONTENT_TYPE);
        expect((await store.head(a.key)).contentType).toBe(DEFAULT_CONTENT_TYPE);
        expect((await store.head(b.key)).contentType).toBe(DEFAULT_CONTENT_TYPE);

        // A replace without a type does not inherit the old one.
        const typed = await store.put({ body: randomBytes(5), contentType: 'image/gif' });
        const replaced = await store.replace(typed.key, { body: randomBytes(6) });
        expect(replaced.contentType).toBe(DEFAULT_CONTENT_TYPE);
        expect((await store.head(replaced.key)).contentType).toBe(DEFAULT_CONTENT_TYPE);
      });
    });

    describe('range reads', () => {
      it('return exactly the bytes from start to end, inclusive, with the whole file info', async () => {
        const { store } = fx();
        const bytes = randomBytes(4096);
        const info = await store.put({ body: streamOf(chunksOf(bytes, 100)), contentType: 'a/b' });
        const ranges = [
          { start: 0, end: 0 },
          { start: 0, end: 4095 },
          { start: 4095, end: 4095 },
          { start: 1, end: 4094 },
          { start: 99, end: 100 },
          { start: 100, end: 199 },
          { start: 4000, end: 4095 },
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
        // A range read leaves the whole file as it was.
        await expectFile(store, info.key, bytes, 'a/b', info);
      });

      it('work on a one-byte file', async () => {
        const { store } = fx();
        const info = await store.put({ body: Uint8Array.of(0xa5) });
        const read = await store.get(info.key, { start: 0, end: 0 });
        expectBytes(await readAll(read.body), Uint8Array.of(0xa5));
      });
    });

    describe('replace', () => {
      it('stores the new content under a new, higher key and retires the old key for good', async () => {
        const { store } = fx();
        const neighbour = await store.put({ body: randomBytes(30), contentType: 'n/n' });
        const oldBytes = randomBytes(500);
        const old = await store.put({ body: oldBytes, contentType: 'text/plain' });
        const newBytes = randomBytes(700);
        const info = await store.replace(old.key, { body: newBytes, contentType: 'image/webp' });

        expectInfoShape(info);
        expect(info.key).toBeGreaterThan(old.key);
        expect(info).toMatchObject({ size: 700, contentType: 'image/webp' });
        await expectFile(store, info.key, newBytes, 'image/webp', info);

        await expectGoneForGood(store, old.key);
        // The refused calls on the old key changed nothing.
        await expectFile(store, info.key, newBytes, 'image/webp', info);
        expect(await store.head(neighbour.key)).toEqual(neighbour);
      });

      it('takes a stream body and a zero-byte body', async () => {
        const { store } = fx();
        const a = await store.put({ body: randomBytes(50) });
        const streamed = randomBytes(20_000);
        const b = await store.replace(a.key, {
          body: streamOf(chunksOf(streamed, 999), { slow: true }),
          contentType: 'x/streamed',
          length: streamed.byteLength,
        });
        await expectFile(store, b.key, streamed, 'x/streamed', b);
        const c = await store.replace(b.key, { body: null, contentType: 'x/empty' });
        expect(c.key).toBeGreaterThan(b.key);
        await expectFile(store, c.key, new Uint8Array(0), 'x/empty', c);
        await expectGone(store, a.key);
        await expectGone(store, b.key);
      });

      it('of a missing, deleted or replaced key is not_found and stores nothing', async () => {
        const { store } = fx();
        const deleted = await store.put({ body: randomBytes(10) });
        await store.delete(deleted.key);
        const replaced = await store.put({ body: randomBytes(10) });
        const current = await store.replace(replaced.key, { body: randomBytes(11) });
        const before = await store.status();
        const missing = [before.nextKey, deleted.key, replaced.key];
        for (const key of missing) {
          await expectCode(store.replace(key, { body: randomBytes(40) }), 'not_found');
          await expectCode(store.replace(key, { body: streamOf([randomBytes(40)]) }), 'not_found');
        }
        await expectNothingStored(store, before);
        expect(await store.head(current.key)).toEqual(current);
        await expectPutStillWorks(store, before);
      });

      it('whose body is refused leaves the old file as it was and stores nothing', async () => {
        const { store } = fx();
        const oldBytes = randomBytes(100);
        const old = await store.put({ body: oldBytes, contentType: 'o/o' });
        const before = await store.status();
        const body = randomBytes(1000);

        await expectCode(store.replace(old.key, { body, limit: 999 }), 'too_large');
        await expectCode(
          store.replace(old.key, { body: streamOf(chunksOf(body, 100)), limit: 999 }),
          'too_large',
        );
        await expectCode(store.replace(old.key, { body, length: 1001 }), 'bad_request');
        await expectCode(
          store.replace(old.key, {
            body: streamOf(chunksOf(body, 100), { failWith: new Error('connection reset') }),
          }),
          'bad_request',
        );

        await expectNothingStored(store, before);
        await expectFile(store, old.key, oldBytes, 'o/o', old);
        const info = await store.replace(old.key, { body, contentType: 'n/n' });
        await expectFile(store, info.key, body, 'n/n', info);
        await expectGone(store, old.key);
      });
    });

    describe('delete', () => {
      it('retires the key: get, head, delete and replace are then not_found; others stay', async () => {
        const { store } = fx();
        const files = [randomBytes(10), randomBytes(0), randomBytes(20)];
        const infos: FileInfo[] = [];
        for (const bytes of files) infos.push(await store.put({ body: bytes }));
        const [first, middle, last] = infos;
        if (!first || !middle || !last) return expect.fail('puts failed');

        await expect(store.delete(middle.key)).resolves.toBeUndefined();
        await expectGoneForGood(store, middle.key);
        await expectFile(store, first.key, files[0] ?? expect.fail(), DEFAULT_CONTENT_TYPE, first);
        await expectFile(store, last.key, files[2] ?? expect.fail(), DEFAULT_CONTENT_TYPE, last);

        await store.delete(first.key);
        await store.delete(last.key);
        await expectGone(store, first.key);
        await expectGone(store, last.key);
      });

      it('of a key never handed out is not_found and changes nothing', async () => {
        const { store } = fx();
        await store.put({ body: randomBytes(10) });
        const before = await store.status();
        await expectCode(store.delete(before.nextKey), 'not_found');
        await expectCode(store.delete(MAX_KEY), 'not_found');
        await expectNothingStored(store, before);
        expect((await store.status()).nextKey).toBe(before.nextKey);
      });
    });

    describe('cookies', () => {
      /** Cookies that are not the file's: near misses, another file's, and 32-bit aliases. */
      function wrongCookies(info: FileInfo, other: FileInfo): number[] {
        const candidates = [
          (info.cookie ^ 1) >>> 0,
          (info.cookie ^ 0x8000_0000) >>> 0,
          (info.cookie + 1) % 2 ** 32,
          other.cookie,
          0,
          0xffff_ffff,
          info.cookie + 2 ** 32,
          -1,
        ];
        return [...new Set(candidates)].filter((cookie) => cookie !== info.cookie);
      }

      it('draws cookies from the CSPRNG, not Math.random (whose outputs give its state away)', async () => {
        const { store } = fx();
        const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
        try {
          const cookies = new Set<number>();
          for (let i = 0; i < 20; i++) cookies.add((await store.put({ body: null })).cookie);
          expect(cookies.size).toBe(20);
        } finally {
          random.mockRestore();
        }
      });

      it('with the right cookie, get, head, replace and delete work as without one', async () => {
        const { store } = fx();
        // Small, medium and large enough to be streamed by adapters that stream big files.
        for (const size of [0, 100, 300_000, 5 * MiB]) {
          const bytes = randomBytes(size);
          const info = await store.put({ body: bytes, contentType: 'x/cookie' });
          const read = await store.get(info.key, undefined, info.cookie);
          expect(read.info).toEqual(info);
          expectBytes(await readAll(read.body), bytes, `bytes of ${size}`);
          if (size > 0) {
            const range = { start: Math.floor(size / 3), end: size - 1 };
            const part = await store.get(info.key, range, info.cookie);
            expect(part.info).toEqual(info);
            expectBytes(await readAll(part.body), bytes.subarray(range.start), `range of ${size}`);
          }
          expect(await store.head(info.key, info.cookie)).toEqual(info);
          // No cookie still works: the cookie is an extra check, never a requirement of the port.
          await expectFile(store, info.key, bytes, 'x/cookie', info);

          const newBytes = randomBytes(size + 1);
          const replaced = await store.replace(info.key, { body: newBytes }, info.cookie);
          expect(replaced.key).toBeGreaterThan(info.key);
          await expectGoneForGood(store, info.key);
          await expectCode(store.get(info.key, undefined, info.cookie), 'not_found');
          expect(await store.head(replaced.key, replaced.cookie)).toEqual(replaced);
          await expectFile(store, replaced.key, newBytes, DEFAULT_CONTENT_TYPE, replaced);

          await expect(store.delete(replaced.key, replaced.cookie)).resolves.toBeUndefined();
          await expectGoneForGood(store, replaced.key);
          await expectCode(store.head(replaced.key, replaced.cookie), 'not_found');
          await expectCode(store.delete(replaced.key, replaced.cookie), 'not_found');
        }
      });

      it('a wrong cookie is not_found for get, head, replace and delete, and changes nothing', async () => {
        const { store } = fx();
        const other = await store.put({ body: randomBytes(10) });
        const files: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
        for (const size of [0, 1000, 5 * MiB]) {
          const bytes = randomBytes(size);
          files.push({ info: await store.put({ body: bytes, contentType: 'x/kept' }), bytes });
        }
        const before = await store.status();
        for (const { info } of files) {
          for (const wrong of wrongCookies(info, other)) {
            await expectCode(store.get(info.key, undefined, wrong), 'not_found');
            if (info.size > 0) {
              await expectCode(store.get(info.key, { start: 0, end: 0 }, wrong), 'not_found');
            }
            await expectCode(store.head(info.key, wrong), 'not_found');
            await expectCode(
              store.replace(info.key, { body: randomBytes(20) }, wrong),
              'not_found',
            );
            await expectCode(
              store.replace(info.key, { body: streamOf([randomBytes(20)]) }, wrong),
              'not_found',
            );
            await expectCode(store.delete(info.key, wrong), 'not_found');
          }
        }
        await expectNothingStored(store, before);
        for (const { info, bytes } of files) {
          await expectFile(store, info.key, bytes, 'x/kept', info);
          expect(await store.head(info.key, info.cookie)).toEqual(info);
        }
        expect(await store.head(other.key, other.cookie)).toEqual(other);
      });

      it('a cookie on a key that was never handed out is not_found', async () => {
        const { store } = fx();
        const info = await store.put({ body: randomBytes(10) });
        const { nextKey } = await store.status();
        await expectCode(store.get(nextKey, undefined, info.cookie), 'not_found');
        await expectCode(store.head(nextKey, info.cookie), 'not_found');
        await expectCode(store.delete(nextKey, info.cookie), 'not_found');
        await expectCode(
          store.replace(nextKey, { body: randomBytes(3) }, info.cookie),
          'not_found',
        );
      });
    });

    describe('limits and declared length', () => {
      it('a Uint8Array body over the limit is too_large and stores nothing', async () => {
        const { store } = fx();
        await store.put({ body: randomBytes(10) });
        const before = await store.status();
        await expectCode(store.put({ body: randomBytes(1001), limit: 1000 }), 'too_large');
        await expectCode(store.put({ body: Uint8Array.of(1), limit: 0 }), 'too_large');
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });

      it('a stream body over the limit is too_large and stores nothing', async () => {
        const { store } = fx();
        await store.put({ body: randomBytes(10) });
        const before = await store.status();
        const bytes = randomBytes(64 * 1024);
        await expectCode(
          store.put({ body: streamOf(chunksOf(bytes, 1024)), limit: 64 * 1024 - 1 }),
          'too_large',
        );
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });

      it('a body exactly at the limit is accepted', async () => {
        const { store } = fx();
        const bytes = randomBytes(4096);
        const a = await store.put({ body: bytes, limit: 4096 });
        const b = await store.put({ body: streamOf(chunksOf(bytes, 1000)), limit: 4096 });
        const c = await store.put({ body: null, limit: 0 });
        await expectFile(store, a.key, bytes, DEFAULT_CONTENT_TYPE, a);
        await expectFile(store, b.key, bytes, DEFAULT_CONTENT_TYPE, b);
        await expectFile(store, c.key, new Uint8Array(0), DEFAULT_CONTENT_TYPE, c);
      });

      it('an endless stream is cut off at the limit, not read to its end', async () => {
        const { store } = fx();
        const before = await store.status();
        const limit = MiB;
        const endless = endlessStream(16 * 1024, 16 * limit);
        await expectCode(store.put({ body: endless.stream, limit }), 'too_large');
        expect(endless.bytesOut).toBeGreaterThan(limit);
        expect(endless.bytesOut).toBeLessThan(4 * limit);
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });

      it('a declared length over the limit is too_large before any byte is read', async () => {
        const { store } = fx();
        const before = await store.status();
        const probe = probeStream(chunksOf(randomBytes(2000), 100));
        await expectCode(store.put({ body: probe.stream, length: 2000, limit: 1000 }), 'too_large');
        expect(probe.pulls).toBe(0);
        await expectCode(
          store.put({ body: randomBytes(100), length: 1001, limit: 1000 }),
          'too_large',
        );
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });

      it('a body over the limit but under its declared length is refused and stores nothing', async () => {
        const { store } = fx();
        const before = await store.status();
        const bytes = randomBytes(3000);
        await expectCode(
          store.put({ body: streamOf(chunksOf(bytes, 500)), length: 900, limit: 1000 }),
          'too_large',
          'bad_request',
        );
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });

      it('a declared length that matches the body is accepted', async () => {
        const { store } = fx();
        const bytes = randomBytes(5000);
        const a = await store.put({ body: bytes, length: 5000 });
        const b = await store.put({
          body: streamOf(chunksOf(bytes, 333)),
          length: 5000,
          limit: 5000,
        });
        const c = await store.put({ body: null, length: 0 });
        await expectFile(store, a.key, bytes, DEFAULT_CONTENT_TYPE, a);
        await expectFile(store, b.key, bytes, DEFAULT_CONTENT_TYPE, b);
        await expectFile(store, c.key, new Uint8Array(0), DEFAULT_CONTENT_TYPE, c);
      });

      it('a body longer than its declared length is bad_request and stores nothing', async () => {
        const { store } = fx();
        await store.put({ body: randomBytes(10) });
        const before = await store.status();
        const bytes = randomBytes(5000);
        await expectCode(store.put({ body: bytes, length: 4999 }), 'bad_request');
        await expectCode(
          store.put({ body: streamOf(chunksOf(bytes, 1000)), length: 4999 }),
          'bad_request',
        );
        await expectCode(store.put({ body: Uint8Array.of(1), length: 0 }), 'bad_request');
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });

      it('a body shorter than its declared length (it ended early) is bad_request and stores nothing', async () => {
        const { store } = fx();
        await store.put({ body: randomBytes(10) });
        const before = await store.status();
        const bytes = randomBytes(5000);
        await expectCode(store.put({ body: bytes, length: 5001 }), 'bad_request');
        await expectCode(
          store.put({ body: streamOf(chunksOf(bytes, 1000)), length: 5001, limit: 10_000 }),
          'bad_request',
        );
        await expectCode(store.put({ body: null, length: 3 }), 'bad_request');
        await expectCode(store.put({ body: streamOf([]), length: 1 }), 'bad_request');
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });

      it('a stream that errors mid-way is bad_request, stores nothing, and later puts still work', async () => {
        const { store } = fx();
        await store.put({ body: randomBytes(10) });
        const before = await store.status();
        const chunks = chunksOf(randomBytes(50_000), 4096);
        await expectCode(
          store.put({ body: streamOf(chunks, { failWith: new Error('socket hang up') }) }),
          'bad_request',
        );
        await expectCode(
          store.put({
            body: streamOf(chunks.slice(0, 3), { failWith: new Error('aborted'), slow: true }),
            length: 50_000,
            limit: 100_000,
            contentType: 'x/aborted',
          }),
          'bad_request',
        );
        await expectCode(
          store.put({ body: streamOf([], { failWith: new Error('before the first byte') }) }),
          'bad_request',
        );
        await expectNothingStored(store, before);
        await expectPutStillWorks(store, before);
      });
    });

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
          infos.push(
            await store.put({ body: randomBytes((i * 397) % 3000), contentType: `x/${i}` }),
          );
        }
        await store.delete(infos[3]?.key ?? expect.fail());
        const live = infos.filter((_, i) => i !== 3);
        const status = await store.status();
        expectStatusConsistent(status);
        if (status.volumes.length === 0) skip('the adapter reports no volumes');

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

    describe('close', () => {
      it('after close every method rejects with closed; closing again is harmless', async () => {
        const { store } = fx();
        const a = await store.put({ body: randomBytes(10) });
        const b = await store.put({ body: randomBytes(10) });
        await store.close();

        await expectCode(store.put({ body: randomBytes(10) }), 'closed');
        await expectCode(store.put({ body: streamOf([randomBytes(10)]) }), 'closed');
        await expectCode(store.put({ body: null }), 'closed');
        await expectCode(store.get(a.key), 'closed');
        await expectCode(store.get(a.key, { start: 0, end: 1 }), 'closed');
        await expectCode(store.get(b.key + 1000), 'closed');
        await expectCode(store.head(a.key), 'closed');
        await expectCode(store.replace(a.key, { body: randomBytes(10) }), 'closed');
        await expectCode(store.delete(b.key), 'closed');
        await expectCode(store.sync(), 'closed');
        await expectCode(store.status(), 'closed');
        await expect(store.close()).resolves.toBeUndefined();
      });
    });

    describe('concurrency', () => {
      it('1,000 concurrent puts get 1,000 distinct keys, each with its own bytes', async () => {
        const { store } = fx();
        const first = await store.put({ body: randomBytes(10) });
        const bodies = Array.from({ length: 1000 }, (_, i) =>
          randomBytes(i % 10 === 0 ? 0 : 1 + ((i * 37) % 2000)),
        );
        const infos = await Promise.all(
          bodies.map((bytes, i) =>
            store.put({
              // Half arrive as slow streams, so uploads interleave.
              body: i % 2 === 0 ? bytes : streamOf(chunksOf(bytes, 256), { slow: true }),
              contentType: `application/x-file-${i}`,
            }),
          ),
        );

        expect(new Set(infos.map((info) => info.key)).size).toBe(1000);
        for (const [i, info] of infos.entries()) {
          const bytes = bodies[i] ?? expect.fail();
          expectInfoShape(info);
          expect(info.key).toBeGreaterThan(first.key);
          expect(info.size).toBe(bytes.byteLength);
          await expectFile(store, info.key, bytes, `application/x-file-${i}`, info);
        }
        const status = await store.status();
        expect(status.liveNeedles).toBe(1001);
        expect(status.nextKey).toBeGreaterThan(Math.max(...infos.map((info) => info.key)));
      });

      it('two concurrent deletes of one key: exactly one succeeds, the other is not_found', async () => {
        const { store } = fx();
        const info = await store.put({ body: randomBytes(10) });
        const results = await Promise.allSettled([store.delete(info.key), store.delete(info.key)]);
        expectExactlyOneWins(results);
        expect(await store.status()).toMatchObject({ liveNeedles: 0, deletedNeedles: 1 });
        await expectGone(store, info.key);
      });

      it('two concurrent replaces of one key: exactly one succeeds, the other stores nothing', async () => {
        const { store } = fx();
        const old = await store.put({ body: randomBytes(10) });
        const bodies = [randomBytes(3000), randomBytes(3001)];
        const results = await Promise.allSettled(
          bodies.map((bytes, i) =>
            store.replace(old.key, {
              body: streamOf(chunksOf(bytes, 500), { slow: true }),
              contentType: `x/replace-${i}`,
            }),
          ),
        );
        const winner = expectExactlyOneWins(results);
        const result = results[winner];
        if (result?.status !== 'fulfilled') return expect.fail('no winner');
        await expectFile(
          store,
          result.value.key,
          bodies[winner] ?? expect.fail(),
          `x/replace-${winner}`,
          result.value,
        );
        await expectGone(store, old.key);
        expect(await store.status()).toMatchObject({ liveNeedles: 1, deletedNeedles: 1 });
      });

      it('a concurrent delete and replace of one key: exactly one succeeds', async () => {
        const { store } = fx();
        const old = await store.put({ body: randomBytes(10) });
        const results = await Promise.allSettled([
          store.replace(old.key, { body: streamOf([randomBytes(100)], { slow: true }) }),
          store.delete(old.key),
        ]);
        const winner = expectExactlyOneWins(results);
        await expectGone(store, old.key);
        expect(await store.status()).toMatchObject({
          liveNeedles: winner === 0 ? 1 : 0,
          deletedNeedles: 1,
        });
      });

      it('concurrent puts, deletes, replaces and reads leave exactly the expected files', async () => {
        const { store } = fx();
        const originals: Array<{ info: FileInfo; bytes: Uint8Array }> = [];
        for (let i = 0; i < 99; i++) {
          const bytes = randomBytes(i * 13);
          originals.push({
            info: await store.put({ body: bytes, contentType: `x/old-${i}` }),
            bytes,
          });
        }
        const toDelete = originals.slice(0, 33);
        const toReplace = originals.slice(33, 66);
        const toRead = originals.slice(66);
        const newBodies = Array.from({ length: 50 }, (_, i) => randomBytes(i * 17));
        const replacementBodies = toReplace.map((_, i) => randomBytes(i * 11));

        const [, replaced, reads, added] = await Promise.all([
          Promise.all(toDelete.map(({ info }) => store.delete(info.key))),
          Promise.all(
            toReplace.map(({ info }, i) =>
              store.replace(info.key, {
                body: streamOf(chunksOf(replacementBodies[i] ?? expect.fail(), 64), { slow: true }),
                contentType: `x/new-${i}`,
              }),
            ),
          ),
          Promise.all(toRead.map(({ info }) => store.get(info.key))),
          Promise.all(
            newBodies.map((bytes, i) =>
              store.put({
                body: streamOf(chunksOf(bytes, 100), { slow: true }),
                contentType: `x/add-${i}`,
              }),
            ),
          ),
        ]);

        for (const { info } of [...toDelete, ...toReplace]) await expectGone(store, info.key);
        for (const [i, info] of replaced.entries()) {
          await expectFile(
            store,
            info.key,
            replacementBodies[i] ?? expect.fail(),
            `x/new-${i}`,
            info,
          );
        }
        for (const [i, read] of reads.entries()) {
          const { info, bytes } = toRead[i] ?? expect.fail();
          expect(read.info).toEqual(info);
          expectBytes(await readAll(read.body), bytes);
        }
        for (const [i, info] of added.entries()) {
          await expectFile(store, info.key, newBodies[i] ?? expect.fail(), `x/add-${i}`, info);
        }
        const keys = [...replaced, ...added].map((info) => info.key);
        expect(new Set(keys).size).toBe(keys.length);
        expect(Math.min(...keys)).toBeGreaterThan(
          Math.max(...originals.map(({ info }) => info.key)),
        );
        const status = await store.status();
        expectStatusConsistent(status);
        expect(status).toMatchObject({ liveNeedles: 99 - 33 + 50, deletedNeedles: 33 + 33 });
      });
    });

    describe('close and reopen', () => {
      it('live files, bytes and content types survive; deleted and replaced keys stay gone', async ({
        skip,
      }) => {
        if (!fx().reopen) skip('the adapter does not persist');
        let store = fx().store;
        const live = new Map<Key, { info: FileInfo; bytes: Uint8Array }>();
        const gone: Key[] = [];
        const add = async (input: PutInput, bytes: Uint8Array): Promise<FileInfo> => {
          const info = await store.put(input);
          live.set(info.key, { info, bytes });
          return info;
        };

        await add({ body: null }, new Uint8Array(0));
        const all = everyByteValue();
        await add(
          { body: streamOf(chunksOf(all, 1)), contentType: 'application/octet-stream' },
          all,
        );
        const big = randomBytes(MiB + 3);
        const bigInfo = await add(
          { body: streamOf(chunksOf(big, 64 * 1024)), contentType: 'video/mp4; codecs="avc1"' },
          big,
        );
        const text = utf8('héllo, haystack\n');
        await add({ body: text, contentType: 'text/plain; charset=utf-8' }, text);

        const deleted = await store.put({ body: randomBytes(100) });
        await store.delete(deleted.key);
        gone.push(deleted.key);

        const old = await store.put({ body: randomBytes(200), contentType: 'o/o' });
        const newBytes = randomBytes(201);
        const replacement = await store.replace(old.key, { body: newBytes, contentType: 'n/n' });
        live.set(replacement.key, { info: replacement, bytes: newBytes });
        gone.push(old.key);

        await expectCode(
          store.put({ body: streamOf(chunksOf(randomBytes(5000), 1000)), limit: 1000 }),
          'too_large',
        );
        // The newest key of all is deleted: the next key must still go above it.
        const newest = await store.put({ body: randomBytes(10) });
        await store.delete(newest.key);
        gone.push(newest.key);

        const before = await store.status();
        const highest = Math.max(...live.keys(), ...gone);
        const closed = store;
        store = await closeAndReopen(store);
        await expectCode(closed.head(bigInfo.key), 'closed');

        const after = await store.status();
        expectStatusConsistent(after);
        expect(after).toMatchObject({
          liveNeedles: before.liveNeedles,
          deletedNeedles: before.deletedNeedles,
          liveBytes: before.liveBytes,
        });
        expect(after.nextKey).toBeGreaterThan(highest);
        for (const [key, { info, bytes }] of live) {
          await expectFile(store, key, bytes, info.contentType, info);
        }
        const range = { start: 65_530, end: 65_540 };
        expectBytes(
          await readAll((await store.get(bigInfo.key, range)).body),
          big.subarray(range.start, range.end + 1),
        );
        for (const key of gone) await expectGoneForGood(store, key);

        const next = await store.put({ body: randomBytes(42), contentType: 'x/after' });
        expect(next.key).toBeGreaterThan(highest);
        expect(next.key).toBe(after.nextKey);
        expect((await store.status()).liveNeedles).toBe(live.size + 1);
      });

      it('keys keep increasing across several reopens, even when the newest file is gone', async ({
        skip,
      }) => {
        if (!fx().reopen) skip('the adapter does not persist');
        let store = fx().store;
        const issued: Key[] = [];
        const kept = new Map<Key, { info: FileInfo; bytes: Uint8Array }>();
        for (let round = 0; round < 3; round++) {
          const bytes = randomBytes(200 + round);
          const info = await store.put({ body: bytes, contentType: `x/round-${round}` });
          if (issued.length > 0) expect(info.key).toBeGreaterThan(Math.max(...issued));
          issued.push(info.key);
          kept.set(info.key, { info, bytes });

          const doomed = await store.put({ body: randomBytes(50) });
          issued.push(doomed.key);
          if (round % 2 === 0) {
            await store.delete(doomed.key);
          } else {
            const replacement = await store.replace(doomed.key, { body: randomBytes(60) });
            issued.push(replacement.key);
            await store.delete(replacement.key);
            await store.sync();
          }

          store = await closeAndReopen(store);
          const status = await store.status();
          expect(status.nextKey).toBeGreaterThan(Math.max(...issued));
          expect(status.liveNeedles).toBe(kept.size);
          for (const [key, file] of kept) {
            await expectFile(store, key, file.bytes, file.info.contentType, file.info);
          }
          for (const key of issued.filter((key) => !kept.has(key))) await expectGone(store, key);
        }
        const last = await store.put({ body: randomBytes(7) });
        expect(last.key).toBeGreaterThan(Math.max(...issued));
      });

      it('an empty store reopens empty', async ({ skip }) => {
        if (!fx().reopen) skip('the adapter does not persist');
        const before = await fx().store.status();
        const store = await closeAndReopen(fx().store);
        const after = await store.status();
        expect(after).toMatchObject({ liveNeedles: 0, deletedNeedles: 0, liveBytes: 0 });
        expect(after.nextKey).toBeGreaterThanOrEqual(before.nextKey);
        const info = await store.put({ body: utf8('first') });
        await expectFile(store, info.key, utf8('first'), DEFAULT_CONTENT_TYPE, info);
      });
    });
  });
}

/** The info is well formed, whatever the adapter. */
function expectInfoShape(info: FileInfo): void {
  expect(Number.isSafeInteger(info.key) && info.key >= 1, `key ${info.key}`).toBe(true);
  expect(Number.isSafeInteger(info.size) && info.size >= 0, `size ${info.size}`).toBe(true);
  expect(Number.isSafeInteger(info.volume) && info.volume >= 0, `volume ${info.volume}`).toBe(true);
  expect(Number.isSafeInteger(info.offset) && info.offset >= 0, `offset ${info.offset}`).toBe(true);
  expect(
    Number.isInteger(info.cookie) && info.cookie >= 0 && info.cookie < 2 ** 32,
    `cookie ${info.cookie}`,
  ).toBe(true);
  expect(typeof info.contentType).toBe('string');
  // A strong entity tag: quoted, no W/ prefix, only characters HTTP allows inside.
  expect(info.etag).toMatch(/^"[\x21\x23-\x7e]*"$/);
}

/** The file is live under `key` with exactly these bytes and this type; head and get agree. */
async function expectFile(
  store: BlobStore,
  key: Key,
  bytes: Uint8Array,
  contentType: string,
  expected?: FileInfo,
): Promise<void> {
  const head = await store.head(key);
  expectInfoShape(head);
  expect(head).toMatchObject({ key, size: bytes.byteLength, contentType });
  if (expected) expect(head).toEqual(expected);
  const read = await store.get(key);
  expect(read.info).toEqual(head);
  expectBytes(await readAll(read.body), bytes, `bytes of key ${key}`);
}

async function expectGone(store: BlobStore, key: Key): Promise<void> {
  await expectCode(store.get(key), 'not_found');
  await expectCode(store.head(key), 'not_found');
}

/** Gone for reads and for writes: deleting or replacing it again is not_found and stores nothing. */
async function expectGoneForGood(store: BlobStore, key: Key): Promise<void> {
  const before = await store.status();
  await expectGone(store, key);
  await expectCode(store.delete(key), 'not_found');
  await expectCode(store.replace(key, { body: randomBytes(8) }), 'not_found');
  await expectNothingStored(store, before);
}

/** Nothing was stored or retired since `before`, and nothing sits under the key it announced. */
async function expectNothingStored(store: BlobStore, before: StoreStatus): Promise<void> {
  const after = await store.status();
  expectStatusConsistent(after);
  expect(after).toMatchObject({
    liveNeedles: before.liveNeedles,
    deletedNeedles: before.deletedNeedles,
    liveBytes: before.liveBytes,
  });
  expect(after.nextKey).toBeGreaterThanOrEqual(before.nextKey);
  await expectCode(store.get(before.nextKey), 'not_found');
}

/** After a refused upload, the next one gets a fresh key and reads back. */
async function expectPutStillWorks(store: BlobStore, before: StoreStatus): Promise<void> {
  const bytes = randomBytes(777);
  const info = await store.put({ body: streamOf(chunksOf(bytes, 100)), contentType: 'x/after' });
  expect(info.key).toBeGreaterThanOrEqual(before.nextKey);
  await expectFile(store, info.key, bytes, 'x/after', info);
  expect((await store.status()).liveNeedles).toBe(before.liveNeedles + 1);
}

function expectStatusConsistent(status: StoreStatus): void {
  const counts = ['liveNeedles', 'deletedNeedles', 'bytes', 'liveBytes', 'garbageBytes'] as const;
  for (const field of counts) {
    const value = status[field];
    expect(Number.isSafeInteger(value) && value >= 0, `${field} ${value}`).toBe(true);
  }
  expect(Number.isSafeInteger(status.nextKey) && status.nextKey >= 1).toBe(true);
  expect(status.liveBytes + status.garbageBytes).toBeLessThanOrEqual(status.bytes);
  expectRatio(status.garbageRatio, status.garbageBytes, status.bytes);
  if (status.volumes.length === 0) return;
  for (const field of counts) {
    const sum = status.volumes.reduce((total, volume) => total + volume[field], 0);
    expect(sum, `${field} summed over volumes`).toBe(status[field]);
  }
  for (const volume of status.volumes) {
    expect(volume.liveBytes + volume.garbageBytes).toBeLessThanOrEqual(volume.bytes);
    expectRatio(volume.garbageRatio, volume.garbageBytes, volume.bytes);
  }
}

function expectRatio(ratio: number, garbage: number, bytes: number): void {
  expect(ratio).toBeGreaterThanOrEqual(0);
  expect(ratio).toBeLessThanOrEqual(1);
  expect(ratio).toBeCloseTo(bytes === 0 ? 0 : garbage / bytes, 6);
}

function expectSyncReport(report: { volumes: number; durationMs: number }): void {
  expect(Number.isSafeInteger(report.volumes) && report.volumes >= 0).toBe(true);
  expect(Number.isFinite(report.durationMs) && report.durationMs >= 0).toBe(true);
}

/** Exactly one of two racing calls succeeded and the other was not_found; returns the winner. */
function expectExactlyOneWins(results: PromiseSettledResult<unknown>[]): number {
  const winners = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []));
  expect(winners, 'calls that succeeded').toHaveLength(1);
  for (const result of results) {
    if (result.status === 'rejected') {
      const reason: unknown = result.reason;
      expect(isStoreError(reason) ? reason.code : reason).toBe('not_found');
    }
  }
  return winners[0] ?? -1;
}
