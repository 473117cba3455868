import {
  type ByteRange,
  type FileInfo,
  type FileRead,
  type Key,
  MAX_CONTENT_TYPE_LENGTH,
  StoreError,
} from '../../storage/index.ts';
import { fileInfo } from '../file-info.ts';
import {
  decodeNeedle,
  FOOTER_SIZE,
  HEADER_SIZE,
  type NeedleHeader,
  NeedleKind,
  needleLength,
  readHeader,
} from './needle.ts';
import type { NeedleLocation } from './needle-map.ts';
import { streamData } from './read-stream.ts';
import { corrupt, notFound } from './store-errors.ts';
import type { StoreState } from './store-state.ts';
import type { Volume } from './volume.ts';

/** Needles up to this size are read whole (one read) and verified before any byte is answered. */
const WHOLE_READ = 4 * 1024 * 1024;
/** Needles up to this size are read on the event loop's thread (see VolumeFile.readNow). */
const SYNC_READ_MAX = 256 * 1024;

/** What the read path needs of the store: where keys are, and the volumes. */
export type ReadState = Pick<StoreState, 'live' | 'volumes'>;

/** A live file, whole or a range: small ones verified in one read, large ones streamed. */
export async function readFile(
  state: ReadState,
  key: Key,
  range: ByteRange | undefined,
  cookie: number | undefined,
): Promise<FileRead> {
  const location = locate(state, key);
  const volume = volumeOf(state, location);
  if (location.length <= WHOLE_READ) {
    const bytes =
      location.length <= SYNC_READ_MAX
        ? volume.file.readNow(location.offset, location.length)
        : await volume.file.read(location.offset, location.length);
    const needle = decodeNeedle(bytes);
    if (typeof needle === 'string') throw corrupt(key, location, needle);
    const header = checkHeader(key, location, needle, cookie);
    const data = range ? needle.data.subarray(range.start, range.end + 1) : needle.data;
    return { info: infoOf(header, needle.contentType, location), body: data };
  }
  const file = volume.file;
  const { header, contentType, head } = readHead(state, key, location, cookie);
  const info = infoOf(header, contentType, location);
  return { info, body: streamData(file, location, head, header.dataSize, range) };
}

/** What `readFile` would answer, without the bytes. */
export async function headFile(
  state: ReadState,
  key: Key,
  cookie: number | undefined,
): Promise<FileInfo> {
  const location = locate(state, key);
  const { header, contentType } = readHead(state, key, location, cookie);
  return infoOf(header, contentType, location);
}

/** The live file's location; with a cookie, only if the stored cookie matches. */
export async function locateFile(
  state: ReadState,
  key: Key,
  cookie: number | undefined,
): Promise<NeedleLocation> {
  const location = locate(state, key);
  if (cookie !== undefined) readHead(state, key, location, cookie);
  return location;
}

/**
 * The live file's info and the checksum its needle was stored with (of its header, content type
 * and data), read on this thread as `readHead` is.
 */
export function storedNeedle(state: ReadState, key: Key): { info: FileInfo; checksum: number } {
  const location = locate(state, key);
  const { header, contentType } = readHead(state, key, location, undefined);
  const at = location.offset + HEADER_SIZE + header.contentTypeLength + header.dataSize;
  const bytes = volumeOf(state, location).file.readNow(at, FOOTER_SIZE);
  if (bytes.byteLength < FOOTER_SIZE) throw corrupt(key, location, 'truncated');
  return { info: infoOf(header, contentType, location), checksum: bytes.readUInt32LE(0) };
}

export function locate(state: ReadState, key: Key): NeedleLocation {
  // The map stores 53-bit integer keys; anything else must not alias a stored one.
  if (!Number.isSafeInteger(key) || key < 1) {
    throw new StoreError('bad_key', `${key} is not a key (an integer from 1 to 2^53-1)`);
  }
  const location = state.live.map.get(key);
  if (!location) throw notFound(key);
  return location;
}

/**
 * The needle's header and content type, checked, read on this thread: the location and the
 * file it names are taken in one turn, so a compaction swap cannot come between them.
 */
function readHead(
  state: ReadState,
  key: Key,
  location: NeedleLocation,
  cookie: number | undefined,
) {
  const volume = volumeOf(state, location);
  const length = Math.min(location.length, HEADER_SIZE + MAX_CONTENT_TYPE_LENGTH);
  const head = volume.file.readNow(location.offset, length);
  const header = readHeader(head);
  if (typeof header === 'string') throw corrupt(key, location, header);
  checkHeader(key, location, header, cookie);
  const contentEnd = HEADER_SIZE + header.contentTypeLength;
  if (head.byteLength < contentEnd) throw corrupt(key, location, 'truncated');
  return {
    header,
    contentType: head.toString('latin1', HEADER_SIZE, contentEnd),
    head: head.subarray(0, contentEnd),
  };
}

/**
 * The index must point at this key's file needle, of the length the index says. A caller that
 * names a cookie must name the stored one, or the file does not exist for it.
 */
function checkHeader(
  key: Key,
  location: NeedleLocation,
  header: NeedleHeader,
  cookie: number | undefined,
): NeedleHeader {
  if (
    header.kind !== NeedleKind.file ||
    header.key !== key ||
    needleLength(header.contentTypeLength, header.dataSize) !== location.length
  ) {
    throw corrupt(key, location, 'the index points at another needle');
  }
  if (cookie !== undefined && header.cookie !== cookie) throw notFound(key);
  return header;
}

function infoOf(header: NeedleHeader, contentType: string, location: NeedleLocation): FileInfo {
  const { key, cookie, dataSize: size } = header;
  return fileInfo({
    key,
    size,
    volume: location.volume,
    offset: location.offset,
    cookie,
    contentType,
  });
}

function volumeOf(state: ReadState, location: NeedleLocation): Volume {
  const volume = state.volumes.get(location.volume);
  if (!volume) throw new StoreError('corrupt', `volume ${location.volume} is missing`);
  return volume;
}
