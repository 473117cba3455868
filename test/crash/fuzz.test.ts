import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVolumeStore, type VolumeStore } from '../../adapters/volume/index.ts';
import {
  decodeNeedle,
  encodeNeedle,
  type NeedleFields,
  NeedleKind,
  needleLength,
  readHeader,
  voidHeader,
} from '../../adapters/volume/needle.ts';
import { type ScanEvent, scanVolume } from '../../adapters/volume/scan.ts';
import { SUPERBLOCK_SIZE, VolumeFile } from '../../adapters/volume/volume-file.ts';
import { createApp } from '../../handlers/index.ts';
import { makeMemoryTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * Property-based tests (fast-check) of the needle codec, the scanner and the HTTP layer, on random
 * and mutated input. A failure prints fast-check's seed and the shrunk counterexample; run again
 * with `fc.assert(..., { seed, path })` to replay it. Run counts keep the file within seconds.
 */

/** `FUZZ_SCALE=20 npx vitest run test/crash/fuzz.test.ts` runs every property 20 times longer. */
const SCALE = Math.max(1, Number(process.env.FUZZ_SCALE ?? 1) || 1);
const runs = (n: number) => ({ numRuns: n * SCALE });

let dir: string;
beforeAll(async () => {
  dir = await makeMemoryTempDir('haystack-fuzz-');
});
afterAll(async () => {
  await removeTempDir(dir);
});

// --- needle codec ----------------------------------------------------------------------------

const latin1Char = fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code));

const needleFields: fc.Arbitrary<NeedleFields> = fc.record({
  kind: fc.constantFrom(NeedleKind.file, NeedleKind.tombstone),
  key: fc.oneof(
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER),
  ),
  cookie: fc.integer({ min: 0, max: 0xffffffff }),
  contentType: fc.oneof(
    fc.string({ unit: latin1Char, maxLength: 40 }),
    fc.string({ unit: latin1Char, minLength: 1000, maxLength: 1024 }),
  ),
  data: fc.uint8Array({ maxLength: 2048 }),
});

type Mutation =
  | { type: 'flip'; at: number; mask: number }
  | { type: 'set'; at: number; value: number }
  | { type: 'truncate'; at: number }
  | { type: 'append'; bytes: Uint8Array }
  | { type: 'zero'; at: number; length: number };

/** Positions are fractions of the length, so one mutation fits any buffer. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    type: fc.constant('flip' as const),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    type: fc.constant('set' as const),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({
    type: fc.constant('truncate' as const),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  }),
  fc.record({ type: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({
    type: fc.constant('zero' as const),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    length: fc.integer({ min: 1, max: 64 }),
  }),
);

/** Applies mutations to a copy; returns it and which byte positions of the original changed. */
function mutate(source: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(source);
  for (const m of mutations) {
    if (out.byteLength === 0 && m.type !== 'append') continue;
    const at = 'at' in m ? Math.floor(m.at * out.byteLength) : 0;
    switch (m.type) {
      case 'flip':
        out.writeUInt8(out.readUInt8(at) ^ m.mask, at);
        break;
      case 'set':
        out.writeUInt8(m.value, at);
        break;
      case 'truncate':
        out = out.subarray(0, at);
        break;
      case 'append':
        out = Buffer.concat([out, m.bytes]);
        break;
      case 'zero':
        out.fill(0, at, Math.min(out.byteLength, at + m.length));
        break;
    }
  }
  return out;
}

function sameNeedle(decoded: Exclude<ReturnType<typeof decodeNeedle>, string>, x: NeedleFields) {
  return (
    decoded.kind === x.kind &&
    decoded.key === x.key &&
    decoded.cookie === x.cookie &&
    decoded.contentType === x.contentType &&
    Buffer.from(decoded.data).equals(Buffer.from(x.data))
  );
}

describe('needle codec (fuzzed)', () => {
  it('decode(encode(x)) is x, in an 8-aligned needle of the documented length', () => {
    fc.assert(
      fc.property(needleFields, (x) => {
        const bytes = encodeNeedle(x);
        expect(bytes.byteLength).toBe(needleLength(x.contentType.length, x.data.byteLength));
        expect(bytes.byteLength % 8).toBe(0);
        const decoded = decodeNeedle(bytes);
        if (typeof decoded === 'string') throw new Error(`did not decode: ${decoded}`);
        expect(sameNeedle(decoded, x)).toBe(true);
        expect(readHeader(bytes)).toEqual({
          kind: x.kind,
          key: x.key,
          cookie: x.cookie,
          contentTypeLength: x.contentType.length,
          dataSize: x.data.byteLength,
        });
      }),
      runs(300),
    );
  });

  it('a mutated needle decodes to a problem or to the same needle, never to other data', () => {
    fc.assert(
      fc.property(needleFields, fc.array(mutation, { minLength: 1, maxLength: 4 }), (x, ms) => {
        const mutated = mutate(encodeNeedle(x), ms);
        const decoded = decodeNeedle(mutated);
        if (typeof decoded === 'string') return;
        // Only bytes outside header, content type, data and checksum changed (padding, a tail).
        expect(sameNeedle(decoded, x)).toBe(true);
      }),
      runs(1000),
    );
  });
});

// --- scanner ---------------------------------------------------------------------------------

let superblock: Buffer;
let scanCount = 0;

/** Writes `body` after a valid superblock, scans the volume and returns what the scan said. */
async function scanBytes(body: Buffer): Promise<{ events: ScanEvent[]; end: number }> {
  if (!superblock) {
    const created = await VolumeFile.create(path.join(dir, 'template.dat'), 1);
    await created.close();
    superblock = (await readFile(path.join(dir, 'template.dat'))).subarray(0, SUPERBLOCK_SIZE);
  }
  const file = path.join(dir, `scan-${scanCount++ % 4}.dat`);
  await writeFile(file, Buffer.concat([superblock, body]));
  const volume = await VolumeFile.open(file, 1, 'r');
  try {
    const events: ScanEvent[] = [];
    const end = await scanVolume(volume, (event) => events.push(event));
    return { events, end };
  } finally {
    await volume.close();
  }
}

/** Events tile the volume in order, the returned end is right, and every needle verifies. */
function expectSoundScan(volume: Buffer, events: readonly ScanEvent[], end: number): void {
  let position = SUPERBLOCK_SIZE;
  events.forEach((event, i) => {
    expect(event.offset).toBe(position);
    expect(event.length).toBeGreaterThan(0);
    if (event.type === 'torn') {
      expect(i).toBe(events.length - 1);
      expect(event.offset + event.length).toBe(volume.byteLength);
      expect(end).toBe(event.offset);
    }
    if (event.type === 'needle') {
      const decoded = decodeNeedle(volume.subarray(event.offset, event.offset + event.length));
      if (typeof decoded === 'string') throw new Error(`needle event does not verify: ${decoded}`);
      expect(decoded.key).toBe(event.header.key);
      expect(decoded.kind).toBe(event.header.kind);
      expect(needleLength(decoded.contentTypeLength, decoded.dataSize)).toBe(event.length);
    }
    position = event.offset + event.length;
  });
  if (events.at(-1)?.type === 'torn') {
    expect(position).toBe(volume.byteLength);
  } else {
    // The events end where the scan says the data ends; past it only zeros (written ahead of the
    // appends), which hide no needle.
    expect(end).toBe(position);
    expect(isAllZero(volume.subarray(end)), `non-zero bytes past the end ${end}`).toBe(true);
  }
}

function isAllZero(bytes: Buffer): boolean {
  return bytes.every((byte) => byte === 0);
}

const smallNeedle: fc.Arbitrary<NeedleFields | { void: number }> = fc.oneof(
  { weight: 6, arbitrary: needleFields.map((x) => ({ ...x, data: x.data.subarray(0, 200) })) },
  { weight: 1, arbitrary: fc.integer({ min: 5, max: 40 }).map((n) => ({ void: n * 8 })) },
);

function encodeAny(x: NeedleFields | { void: number }): Buffer {
  if ('void' in x) return Buffer.concat([voidHeader(x.void), Buffer.alloc(x.void - 32)]);
  return encodeNeedle({ ...x, contentType: x.contentType.slice(0, 20) });
}

describe('scanner (fuzzed)', () => {
  it('never throws on random bytes, and reports them soundly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), async (garbage) => {
        const body = Buffer.from(garbage);
        const { events, end } = await scanBytes(body);
        expectSoundScan(Buffer.concat([superblock, body]), events, end);
      }),
      runs(150),
    );
  });

  it('on mutated volumes: every needle event verifies, and untouched needles are all found', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(smallNeedle, { minLength: 1, maxLength: 8 }),
        fc.array(mutation, { maxLength: 4 }),
        async (needles, ms) => {
          const parts = needles.map(encodeAny);
          const body = Buffer.concat(parts);
          const mutated = mutate(body, ms);
          const { events, end } = await scanBytes(mutated);
          const volume = Buffer.concat([superblock, mutated]);
          expectSoundScan(volume, events, end);
          // A file or tombstone whose bytes are all still in place is found where it was.
          const found = new Set(events.filter((e) => e.type === 'needle').map((e) => e.offset));
          let offset = 0;
          for (const [i, part] of parts.entries()) {
            const intact =
              offset + part.byteLength <= mutated.byteLength &&
              mutated.subarray(offset, offset + part.byteLength).equals(part);
            if (intact && !('void' in (needles[i] as object))) {
              expect(found.has(SUPERBLOCK_SIZE + offset), `needle ${i} at ${offset}`).toBe(true);
            }
            offset += part.byteLength;
          }
        },
      ),
      runs(200),
    );
  });

  it('on pre-sized volumes: the zeros after the last needle are its end, and a byte set in them is damage, never the end', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(smallNeedle, { minLength: 0, maxLength: 6 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.array(
          fc.record({
            at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
            value: fc.integer({ min: 1, max: 255 }),
          }),
          { maxLength: 2 },
        ),
        async (needles, zeros, sets) => {
          const parts = needles.map(encodeAny);
          const data = Buffer.concat(parts);
          const body = Buffer.concat([data, Buffer.alloc(zeros)]);
          const changed =
            zeros === 0 ? [] : sets.map((x) => data.byteLength + Math.floor(x.at * zeros));
          sets.forEach((x, i) => {
            if (changed[i] !== undefined) body.writeUInt8(x.value, changed[i] as number);
          });
          const offsets: number[] = [];
          for (let at = SUPERBLOCK_SIZE, i = 0; i < parts.length; i++) {
            offsets.push(at);
            at += (parts[i] as Buffer).byteLength;
          }
          const { events, end } = await scanBytes(body);
          const volume = Buffer.concat([superblock, body]);
          expectSoundScan(volume, events, end);
          const needlesEnd = SUPERBLOCK_SIZE + data.byteLength;
          const found = events.filter((e) => e.type === 'needle' || e.type === 'void');
          // Every needle before the zeros is found whole, wherever a byte was set after them.
          expect(found.map((e) => e.offset)).toEqual(offsets);
          if (changed.length === 0) {
            expect(end).toBe(needlesEnd);
            expect(events.length).toBe(found.length);
          } else {
            // The set byte is inside a region reported as damaged (torn: cut at the next start).
            const first = SUPERBLOCK_SIZE + Math.min(...changed);
            const damaged = events.filter((e) => e.type === 'torn' || e.type === 'corrupt');
            expect(damaged.some((e) => e.offset <= first && first < e.offset + e.length)).toBe(
              true,
            );
            expect(end).toBeLessThanOrEqual(first);
          }
        },
      ),
      runs(200),
    );
  });
});

// --- HTTP ------------------------------------------------------------------------------------

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const MAX_BODY = 64 * 1024;

interface Known {
  bytes: Buffer;
  contentType: string;
  etag: string;
}

describe('HTTP layer (fuzzed, over a real volume store)', () => {
  let store: VolumeStore;
  let app: ReturnType<typeof createApp>;
  const snapshot = new Map<number, Known>();
  /** Files the fuzzed requests created and did not remove: fair game for PUT and DELETE. */
  const scratch = new Map<number, Known>();
  const retired = new Set<number>();
  let volumeBefore: Buffer;
  const unexpected: unknown[] = [];

  beforeAll(async () => {
    store = await openVolumeStore({ dir: path.join(dir, 'http'), fsync: 'never' });
    app = createApp({ store, maxBody: MAX_BODY, onUnexpectedError: (err) => unexpected.push(err) });
    for (const [size, type] of [
      [0, 'text/plain'],
      [1, undefined],
      [5000, 'image/png'],
      [MAX_BODY, 'application/x-big'],
    ] as const) {
      const bytes = Buffer.alloc(size, size % 251);
      for (let i = 0; i < size; i += 97) bytes[i] = i % 256;
      const res = await app.request('/file', {
        method: 'POST',
        body: bytes,
        headers: type ? { 'content-type': type } : {},
      });
      const json = (await res.json()) as { key: number; etag: string; contentType: string };
      snapshot.set(json.key, { bytes, contentType: json.contentType, etag: json.etag });
    }
    await store.sync();
    volumeBefore = await readFile(path.join(dir, 'http', '1.dat'));
  });

  afterAll(async () => {
    await store?.close();
  });

  const methods = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS');
  const keyText = fc.oneof(
    fc.constantFrom('snapshot', 'scratch', 'scratch', 'retired'),
    fc.integer({ min: 1, max: 10_000 }).map(String),
    fc.constantFrom(
      '0',
      '-1',
      '1.5',
      '007',
      '+1',
      '1e3',
      '0x10',
      'abc',
      '9007199254740991',
      '9007199254740992',
      '123456789012345678901234567890',
      '%31',
      '%E0%A4%A',
      '%00',
      ' 1',
      '1%20',
      '',
    ),
    fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map(encodeURIComponent),
  );
  const pathShape = fc.oneof(
    { weight: 6, arbitrary: keyText.map((k) => ({ kind: 'key' as const, k })) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '/file',
        '/file/',
        '/sync',
        '/status',
        '/',
        '//file',
        '/FILE/1',
        '/file/1/2',
        '/file?x=1',
        '/status/..',
        '/%2e%2e/file',
        '/file/%2F',
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .string({ unit: 'grapheme-ascii', maxLength: 20 })
        .map((s) => `/${encodeURIComponent(s)}`),
    },
  );
  const headerText = fc.string({
    unit: fc
      .oneof(
        { weight: 20, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
        { weight: 1, arbitrary: fc.constantFrom(0x09, 0x7f, 0x80, 0xe9, 0xff) },
      )
      .map((c) => String.fromCharCode(c)),
    maxLength: 40,
  });
  const rangeText = fc.oneof(
    fc
      .tuple(fc.option(fc.nat(70_000)), fc.option(fc.nat(70_000)))
      .map(([a, b]) => `bytes=${a ?? ''}-${b ?? ''}`),
    fc.constantFrom(
      'bytes=0-0',
      'bytes=-0',
      'bytes=5-2',
      'bytes=0-0,1-1',
      'bits=0-1',
      'bytes=',
      'bytes=99999999999999999999-',
      'bytes=--1',
      'BYTES=0-1',
      'bytes = 0-1',
    ),
    headerText,
  );
  const bodyShape = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
    {
      weight: 5,
      arbitrary: fc
        .integer({ min: 0, max: MAX_BODY + 200 })
        .map((size) => ({ kind: 'bytes' as const, size })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ chunks: fc.integer({ min: 0, max: 4 }), size: fc.integer({ min: 1, max: 9000 }) })
        .map((s) => ({ kind: 'aborted' as const, ...s })),
    },
  );
  const request = fc.record({
    method: methods,
    path: pathShape,
    body: bodyShape,
    contentType: fc.option(
      fc.oneof(
        headerText,
        fc.constantFrom('image/jpeg', 'text/plain; charset=utf-8', ''),
        fc.constant('x'.repeat(2000)),
      ),
    ),
    contentLength: fc.option(
      fc.oneof(
        fc.constant('true'), // the body's real length
        fc.nat(MAX_BODY + 500).map(String),
        fc.constantFrom('-1', '1.5', 'abc', '00010', '99999999999999999999', '', '5, 5'),
      ),
    ),
    range: fc.option(rangeText),
    ifNoneMatch: fc.option(
      fc.oneof(fc.constant('etag'), fc.constantFrom('*', 'W/"x"'), headerText),
    ),
    ifRange: fc.option(fc.oneof(fc.constant('etag'), headerText)),
    hugeHeader: fc.option(fc.integer({ min: 8 * 1024, max: 64 * 1024 })),
    pick: fc.nat(),
  });

  it('no 5xx, errors as JSON without stacks, uploads whole or not at all', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const mutating = r.method === 'PUT' || r.method === 'DELETE';
        // The path, with symbolic keys resolved against what exists now.
        let key: number | undefined;
        let url: string;
        if (typeof r.path === 'string') {
          url = r.path;
        } else {
          let k = r.path.k;
          const choose = (keys: number[]) => keys[r.pick % keys.length];
          if (k === 'snapshot') {
            // Snapshot files are only ever read: their bytes must stay as they are.
            key = mutating ? undefined : choose([...snapshot.keys()]);
          } else if (k === 'scratch') {
            key = choose([...scratch.keys()]);
          } else if (k === 'retired') {
            key = choose([...retired]);
          }
          if (key !== undefined) k = String(key);
          else if (['snapshot', 'scratch', 'retired'].includes(k)) k = '999999';
          // `%31` is `1` once decoded (RFC 3986 2.3), so compare what the router will see.
          if (mutating && snapshot.has(Number(safeDecode(k)))) k = '999999';
          url = `/file/${k}`;
          // The key the router will see, however it was spelled (`%31` is `1`).
          const decoded = safeDecode(k);
          key = /^[1-9][0-9]{0,15}$/.test(decoded) ? Number(decoded) : undefined;
          if (key !== undefined && key > Number.MAX_SAFE_INTEGER) key = undefined;
        }

        const known = key === undefined ? undefined : (snapshot.get(key) ?? scratch.get(key));
        const headers: Record<string, string> = {};
        if (r.contentType !== null) headers['content-type'] = r.contentType;
        if (r.range !== null) headers.range = r.range;
        if (r.ifNoneMatch !== null) {
          headers['if-none-match'] =
            r.ifNoneMatch === 'etag' ? (known?.etag ?? '"1-0"') : r.ifNoneMatch;
        }
        if (r.ifRange !== null) {
          headers['if-range'] = r.ifRange === 'etag' ? (known?.etag ?? '"1-0"') : r.ifRange;
        }
        if (r.hugeHeader !== null) headers['x-padding'] = 'p'.repeat(r.hugeHeader);

        const canHaveBody = r.method !== 'GET' && r.method !== 'HEAD';
        let sent: Buffer | undefined;
        let body: Uint8Array | ReadableStream<Uint8Array> | undefined;
        if (canHaveBody && r.body.kind === 'bytes') {
          sent = Buffer.alloc(r.body.size);
          for (let i = 0; i < sent.byteLength; i += 61) sent[i] = (i * 7 + r.pick) % 256;
          body = sent;
        } else if (canHaveBody && r.body.kind === 'aborted') {
          const { chunks, size } = r.body;
          let n = 0;
          body = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (n++ < chunks) controller.enqueue(new Uint8Array(size));
              else controller.error(new Error('the client went away'));
            },
          });
        }
        if (r.contentLength !== null) {
          headers['content-length'] =
            r.contentLength === 'true' ? String(sent?.byteLength ?? 0) : r.contentLength;
        }

        const res = await app.request(url, {
          method: r.method,
          headers,
          ...(body === undefined ? {} : { body, duplex: 'half' }),
        } as RequestInit);
        const bytes = Buffer.from(await res.arrayBuffer());
        const what = `${r.method} ${url} -> ${res.status} ${bytes.toString('latin1', 0, 200)}`;

        expect(res.status, what).toBeLessThan(500);
        if (res.status >= 400 && r.method !== 'HEAD') {
          const json = JSON.parse(bytes.toString('utf8')) as {
            error: { code: string; message: string };
          };
          expect(json, what).toEqual({
            error: { code: expect.any(String), message: expect.any(String) },
          });
          expect(json.error.message, what).not.toMatch(/\n\s+at /);
        }

        const declared = headers['content-length'];
        // What the server received whole: no body is an empty file; an aborted stream is nothing.
        const received =
          r.body.kind === 'aborted' || !canHaveBody ? undefined : (sent ?? Buffer.alloc(0));
        const lengthTruthful =
          received !== undefined &&
          (declared === undefined ||
            (/^[0-9]+$/.test(declared) && Number(declared) === received.byteLength));
        if (
          (r.method === 'POST' && res.status === 201) ||
          (r.method === 'PUT' && res.status === 200)
        ) {
          // Stored: only a whole body that matched what was declared, within the limit.
          expect(lengthTruthful, what).toBe(true);
          expect((received as Buffer).byteLength, what).toBeLessThanOrEqual(MAX_BODY);
          const json = JSON.parse(bytes.toString('utf8')) as {
            key: number;
            etag: string;
            contentType: string;
          };
          scratch.set(json.key, {
            bytes: received as Buffer,
            contentType: json.contentType,
            etag: json.etag,
          });
          if (r.method === 'PUT' && key !== undefined) {
            scratch.delete(key);
            retired.add(key);
          }
        }
        if (r.method === 'DELETE' && res.status === 200 && key !== undefined) {
          scratch.delete(key);
          retired.add(key);
        }
        if ((r.method === 'GET' || r.method === 'HEAD') && key !== undefined) {
          if (known) {
            expect([200, 206, 304, 416], what).toContain(res.status);
            if (res.status === 200 && r.method === 'GET')
              expect(bytes.equals(known.bytes), what).toBe(true);
            if (res.status === 206) {
              const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
              expect(m, what).not.toBeNull();
              const [, a, b, size] = (m as RegExpExecArray).map(Number) as number[];
              expect(size, what).toBe(known.bytes.byteLength);
              expect(bytes.equals(known.bytes.subarray(a, (b as number) + 1)), what).toBe(true);
            }
            if (res.status === 304) expect(r.ifNoneMatch, what).not.toBeNull();
            if (res.status === 416) expect(r.range, what).not.toBeNull();
          } else {
            expect(res.status, what).toBe(404); // retired, or never stored
          }
        }
      }),
      runs(400),
    );

    // Nothing stored before was touched, byte for byte, and everything stored since is whole.
    const volumeAfter = await readFile(path.join(dir, 'http', '1.dat'));
    expect(volumeAfter.subarray(0, volumeBefore.byteLength).equals(volumeBefore)).toBe(true);
    for (const [key, file] of [...snapshot, ...scratch]) {
      const { info, body } = await store.get(key);
      expect(Buffer.from(body as Uint8Array).equals(file.bytes), `key ${key}`).toBe(true);
      expect(info.etag).toBe(file.etag);
      expect(info.contentType).toBe(file.contentType);
    }
    for (const key of retired) {
      await expect(store.get(key)).rejects.toMatchObject({ code: 'not_found' });
    }
    expect((await store.status()).liveNeedles).toBe(snapshot.size + scratch.size);
    // Aborted and refused uploads block nothing: a plain upload still works.
    const res = await app.request('/file', { method: 'POST', body: 'after the fuzz' });
    expect(res.status).toBe(201);
    expect(unexpected).toEqual([]);
  });
});
