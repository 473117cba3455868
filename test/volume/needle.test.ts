import { describe, expect, it, vi } from 'vitest';
import {
  decodeNeedle,
  encodeNeedle,
  encodeNeedleParts,
  HEADER_SIZE,
  NeedleKind,
  needleLength,
  readHeader,
  TOMBSTONE_LENGTH,
  tombstone,
  voidHeader,
} from '../../adapters/volume/needle.ts';

const sample = {
  kind: NeedleKind.file,
  key: 2 ** 40 + 12345, // above 32 bits: both halves of the u64 matter
  cookie: 0xdeadbeef,
  contentType: 'image/jpeg; q=0.9',
  data: Buffer.from(Array.from({ length: 301 }, (_, i) => (i * 7) % 256)),
};

describe('needle codec', () => {
  it('round-trips every field', () => {
    const bytes = encodeNeedle(sample);
    expect(bytes.byteLength % 8).toBe(0);
    expect(bytes.byteLength).toBe(needleLength(17, 301));
    const needle = decodeNeedle(bytes);
    expect(needle).toMatchObject({
      kind: NeedleKind.file,
      key: sample.key,
      cookie: sample.cookie,
      contentType: sample.contentType,
      contentTypeLength: 17,
      dataSize: 301,
    });
    if (typeof needle === 'string') throw new Error(needle);
    expect(Buffer.compare(needle.data, sample.data)).toBe(0);
  });

  it('writes large data as parts that add up to the same needle, without copying it', () => {
    for (const size of [0, 301, 8191, 8192, 70_001]) {
      const backing = Buffer.alloc(size + 3, 0x5a);
      const data = backing.subarray(3); // a view at an offset, as a request body may be
      data.fill(size % 251);
      const parts = encodeNeedleParts({ ...sample, data });
      expect(Buffer.concat(parts)).toEqual(encodeNeedle({ ...sample, data }));
      if (size >= 8192) {
        expect(parts).toHaveLength(3);
        expect(parts[1]?.buffer).toBe(backing.buffer); // the caller's bytes, not a copy
      }
    }
  });

  it('writes every byte itself, padding included, into uninitialized memory', () => {
    // encodeNeedle takes uninitialized memory: here, memory full of 0xff.
    const dirty = vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n) => Buffer.alloc(n, 0xff));
    try {
      for (let size = 0; size < 16; size++) {
        const fields = { ...sample, data: Buffer.alloc(size, 0xee) };
        const bytes = encodeNeedle(fields);
        const end = HEADER_SIZE + 17 + size + 4;
        expect(bytes.byteLength).toBe(needleLength(17, size));
        expect([...bytes.subarray(end)]).toEqual(new Array(bytes.byteLength - end).fill(0));
        expect(decodeNeedle(bytes)).toMatchObject({ key: sample.key, dataSize: size });
      }
    } finally {
      dirty.mockRestore();
    }
  });

  it('round-trips the largest key and an empty file', () => {
    const bytes = encodeNeedle({ ...sample, key: Number.MAX_SAFE_INTEGER, data: Buffer.alloc(0) });
    expect(decodeNeedle(bytes)).toMatchObject({ key: Number.MAX_SAFE_INTEGER, dataSize: 0 });
  });

  it('encodes tombstones and void needles that scans can step over', () => {
    const dead = tombstone(99);
    expect(dead.byteLength).toBe(TOMBSTONE_LENGTH);
    expect(decodeNeedle(dead)).toMatchObject({ kind: NeedleKind.tombstone, key: 99, dataSize: 0 });
    const hole = readHeader(voidHeader(4096));
    if (typeof hole === 'string') throw new Error(hole);
    expect(hole.kind).toBe(NeedleKind.void);
    expect(needleLength(hole.contentTypeLength, hole.dataSize)).toBe(4096);
  });

  it('detects every truncation', () => {
    const bytes = encodeNeedle(sample);
    const unpadded = HEADER_SIZE + 17 + 301 + 4;
    for (let cut = 0; cut < unpadded; cut++) {
      expect(decodeNeedle(bytes.subarray(0, cut)), `cut at ${cut}`).toBeTypeOf('string');
    }
  });

  it('detects every single-byte flip in header, content type, data and checksum', () => {
    const bytes = encodeNeedle(sample);
    const unpadded = HEADER_SIZE + 17 + 301 + 4;
    for (let at = 0; at < unpadded; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at] = (damaged[at] as number) ^ 0x01;
      expect(decodeNeedle(damaged), `flip at ${at}`).toBeTypeOf('string');
      damaged[at] = (damaged[at] as number) ^ 0xff;
      expect(decodeNeedle(damaged), `flip at ${at}`).toBeTypeOf('string');
    }
  });

  it('names the problem: header damage is told apart from data damage', () => {
    const bytes = encodeNeedle(sample);
    const badMagic = Buffer.from(bytes);
    badMagic[0] = 0;
    expect(decodeNeedle(badMagic)).toBe('bad_magic');
    const badHeader = Buffer.from(bytes);
    badHeader[10] = (badHeader[10] as number) ^ 0x10;
    expect(decodeNeedle(badHeader)).toBe('bad_header_checksum');
    const badData = Buffer.from(bytes);
    badData[HEADER_SIZE + 20] = (badData[HEADER_SIZE + 20] as number) ^ 0x10;
    expect(decodeNeedle(badData)).toBe('bad_checksum');
  });
});
