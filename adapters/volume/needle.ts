import { crc32 } from 'node:zlib';
import { MAX_CONTENT_TYPE_LENGTH } from '../../storage/index.ts';

/**
 * The needle: one self-describing record in a volume file (docs/FORMAT.md gives every byte).
 *
 *   header (32 bytes) | content type | data | crc32 (4 bytes) | zero padding to 8 bytes
 *
 * The header has its own checksum, so a scan can trust a header's sizes (and step over a needle
 * whose data is damaged) and can find the next needle after damage by looking for a valid header.
 * The trailing checksum covers header, content type and data.
 */
export const NEEDLE_MAGIC = 0x4c444e48; // bytes "HNDL"
export const NEEDLE_VERSION = 1;
export const HEADER_SIZE = 32;
export const FOOTER_SIZE = 4;
export const NEEDLE_ALIGNMENT = 8;
/** Keys and sizes are stored as 64-bit integers but kept to what a JS number holds exactly. */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

/** What a needle is. Only `file` needles hold data that can be read. */
export const NeedleKind = {
  file: 0,
  /** Records that a key was deleted or replaced: the volume alone tells the live set. */
  tombstone: 1,
  /** Space reserved for an upload that failed; skipped by scans, reclaimed by compaction. */
  void: 2,
} as const;
export type NeedleKind = (typeof NeedleKind)[keyof typeof NeedleKind];

export interface NeedleHeader {
  kind: NeedleKind;
  key: number;
  cookie: number;
  contentTypeLength: number;
  dataSize: number;
}

export interface Needle extends NeedleHeader {
  contentType: string;
  data: Buffer;
}

/** Why bytes are not a needle; `truncated` means "need more bytes", the rest mean "damaged". */
export type NeedleProblem =
  | 'truncated'
  | 'bad_magic'
  | 'bad_version'
  | 'bad_header_checksum'
  | 'bad_header'
  | 'bad_checksum';

export function align(n: number): number {
  return Math.ceil(n / NEEDLE_ALIGNMENT) * NEEDLE_ALIGNMENT;
}

/** Bytes a needle takes in the volume, padding included. */
export function needleLength(contentTypeLength: number, dataSize: number): number {
  return align(HEADER_SIZE + contentTypeLength + dataSize + FOOTER_SIZE);
}

export const TOMBSTONE_LENGTH = needleLength(0, 0);

export function writeHeader(target: Buffer, at: number, header: NeedleHeader): void {
  target.writeUInt32LE(NEEDLE_MAGIC, at);
  target.writeUInt8(NEEDLE_VERSION, at + 4);
  target.writeUInt8(header.kind, at + 5);
  target.writeUInt16LE(header.contentTypeLength, at + 6);
  writeU64(target, at + 8, header.key);
  writeU64(target, at + 16, header.dataSize);
  target.writeUInt32LE(header.cookie, at + 24);
  target.writeUInt32LE(crc32(target.subarray(at, at + 28)), at + 28);
}

/** Decodes and checks a header; the sizes it returns can be trusted to step over the needle. */
export function readHeader(source: Buffer, at = 0): NeedleHeader | NeedleProblem {
  if (source.byteLength - at < HEADER_SIZE) return 'truncated';
  if (source.readUInt32LE(at) !== NEEDLE_MAGIC) return 'bad_magic';
  if (source.readUInt32LE(at + 28) !== crc32(source.subarray(at, at + 28))) {
    return 'bad_header_checksum';
  }
  if (source.readUInt8(at + 4) !== NEEDLE_VERSION) return 'bad_version';
  const kind = source.readUInt8(at + 5);
  const contentTypeLength = source.readUInt16LE(at + 6);
  const key = readU64(source, at + 8);
  const dataSize = readU64(source, at + 16);
  if (
    (kind !== NeedleKind.file && kind !== NeedleKind.tombstone && kind !== NeedleKind.void) ||
    contentTypeLength > MAX_CONTENT_TYPE_LENGTH ||
    key > MAX_SAFE_U64 ||
    dataSize > MAX_SAFE_U64 ||
    (kind !== NeedleKind.void && key < 1)
  ) {
    return 'bad_header';
  }
  return {
    kind: kind as NeedleKind,
    key,
    cookie: source.readUInt32LE(at + 24),
    contentTypeLength,
    dataSize,
  };
}

export interface NeedleFields {
  kind: NeedleKind;
  key: number;
  cookie: number;
  contentType: string;
  data: Uint8Array;
}

/** Encodes a whole needle into one buffer, ready to append. */
export function encodeNeedle(fields: NeedleFields): Buffer {
  const contentTypeLength = Buffer.byteLength(fields.contentType, 'latin1');
  const dataSize = fields.data.byteLength;
  const length = needleLength(contentTypeLength, dataSize);
  // Not zero-filled: every byte is written below. Small needles then come from Node's shared
  // pool instead of each costing an ArrayBuffer of its own (fresh memory, GC work).
  const out = Buffer.allocUnsafe(length);
  writeHeader(out, 0, { ...fields, contentTypeLength, dataSize });
  out.write(fields.contentType, HEADER_SIZE, 'latin1');
  out.set(fields.data, HEADER_SIZE + contentTypeLength);
  const end = HEADER_SIZE + contentTypeLength + dataSize;
  out.writeUInt32LE(crc32(out.subarray(0, end)), end);
  out.fill(0, end + FOOTER_SIZE);
  return out;
}

/**
 * A needle's header and content type: the bytes before its data. With `footer`, a needle can be
 * written as [head, data, footer] without copying the data into a buffer of its own.
 */
export function needleHead(fields: Omit<NeedleFields, 'data'>, dataSize: number): Buffer {
  const contentTypeLength = Buffer.byteLength(fields.contentType, 'latin1');
  const head = Buffer.allocUnsafe(HEADER_SIZE + contentTypeLength);
  writeHeader(head, 0, { ...fields, contentTypeLength, dataSize });
  head.write(fields.contentType, HEADER_SIZE, 'latin1');
  return head;
}

/**
 * A whole needle as buffers to write one after the other. Large data is not copied (the caller
 * must leave it unchanged until it is written): a copy, and the fresh buffer it needs, would
 * cost more than the extra buffer in the write.
 */
export function encodeNeedleParts(fields: NeedleFields): Buffer[] {
  const dataSize = fields.data.byteLength;
  if (dataSize < COPY_LIMIT) return [encodeNeedle(fields)];
  const head = needleHead(fields, dataSize);
  const data = Buffer.from(fields.data.buffer, fields.data.byteOffset, dataSize);
  const checksum = crc32(data, crc32(head));
  return [head, data, footer(checksum, head.byteLength - HEADER_SIZE, dataSize)];
}

/** Data below this size is copied into one buffer with its header and footer. */
const COPY_LIMIT = 8 * 1024;

export function tombstone(key: number): Buffer {
  return encodeNeedle({ kind: NeedleKind.tombstone, key, cookie: 0, contentType: '', data: EMPTY });
}

/**
 * Decodes a whole needle and verifies both checksums. The data is a view into `source`.
 * A void needle is returned without checking its trailing checksum (its bytes were never
 * completed, by definition).
 */
export function decodeNeedle(source: Buffer): Needle | NeedleProblem {
  const header = readHeader(source);
  if (typeof header === 'string') return header;
  const contentEnd = HEADER_SIZE + header.contentTypeLength;
  const dataEnd = contentEnd + header.dataSize;
  if (header.kind === NeedleKind.void) {
    return { ...header, contentType: '', data: EMPTY };
  }
  if (source.byteLength < dataEnd + FOOTER_SIZE) return 'truncated';
  if (source.readUInt32LE(dataEnd) !== crc32(source.subarray(0, dataEnd))) return 'bad_checksum';
  return {
    ...header,
    contentType: source.toString('latin1', HEADER_SIZE, contentEnd),
    data: source.subarray(contentEnd, dataEnd),
  };
}

/** A void needle's header for a failed upload's reserved space of `length` bytes. */
export function voidHeader(length: number): Buffer {
  const out = Buffer.alloc(HEADER_SIZE);
  // needleLength(0, dataSize) === length, since length is a multiple of 8 and at least 40.
  const dataSize = length - HEADER_SIZE - FOOTER_SIZE;
  writeHeader(out, 0, { kind: NeedleKind.void, key: 0, cookie: 0, contentTypeLength: 0, dataSize });
  return out;
}

export function footer(checksum: number, contentTypeLength: number, dataSize: number): Buffer {
  const unpadded = HEADER_SIZE + contentTypeLength + dataSize + FOOTER_SIZE;
  const out = Buffer.alloc(FOOTER_SIZE + align(unpadded) - unpadded);
  out.writeUInt32LE(checksum, 0);
  return out;
}

const EMPTY = Buffer.alloc(0);
const TWO_32 = 2 ** 32;

function writeU64(target: Buffer, at: number, value: number): void {
  target.writeUInt32LE(value % TWO_32, at);
  target.writeUInt32LE(Math.floor(value / TWO_32), at + 4);
}

function readU64(source: Buffer, at: number): number {
  return source.readUInt32LE(at + 4) * TWO_32 + source.readUInt32LE(at);
}
