import {
  type ByteRange,
  type FileInfo,
  type FileRead,
  isStoreError,
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
import { CACHE_MAX_FILE } from './needle-cache.ts';
import type { NeedleLocation } from './needle-map.ts';
import { pooledLength, readPool } from './read-pool.ts';
import { streamData } from './read-stream.ts';
import { corrupt, notFound } from './store-errors.ts';
import type { StoreState } from './store-state.ts';
import type { Volume } from './volume.ts';

/** Needles up to this size are read whole (one read) and verified before any byte is answered. */
const WHOLE_READ = 4 * 1024 * 1024;
/** Needles up to this size are read on the event loop's thread (see VolumeFile.readNow). */
const SYNC_READ_MAX = 256 * 1024;

/** Needles that may hold a file the cache keeps: others are not looked up (nor counted misses). */
const CACHEABLE_NEEDLE = needleLength(MAX_CONTENT_TYPE_LENGTH, CACHE_MAX_FILE);

/** What the read path needs of the store: where keys are, the volumes, the cache, telemetry. */
export type ReadState = Pick<StoreState, 'live' | 'volumes' | 'cache' | 'telemetry'>;

/** A live file, whole or a range: small ones verified in one read, large ones streamed. */
export async function readFile(
  state: ReadState,
  key: Key,
  range: ByteRange | undefined,
  cookie: number | undefined,
): Promise<FileRead> {
  const location = locate(state, key);
  const cached = cachedRead(state, key, location, cookie);
  if (cached !== undefined) return range ? partOf(cached, range) : cached;
  try {
    const volume = volumeOf(state, location);
    if (location.length <= WHOLE_READ) {
      return await wholeRead(state, key, location, volume, range, cookie);
    }
    const file = volume.file;
    const { header, contentType, head } = readHead(state, key, location, cookie);
    const info = infoOf(header, contentType, location);
    const body = streamData(file, location, head, header.dataSize, range, state.telemetry);
    return { info, body };
  } catch (err) {
    noteCorrupt(state, location, err);
    throw err;
  }
}

/**
 * A needle read whole and verified before any byte is answered. Mid-size ones are read into a
 * pooled buffer (read-pool.ts) that the answer lends out with `release`; a read that fails, or
 * whose bytes the cache copies, gives it back at once. The cache never keeps a pooled buffer.
 */
async function wholeRead(
  state: ReadState,
  key: Key,
  location: NeedleLocation,
  volume: Volume,
  range: ByteRange | undefined,
  cookie: number | undefined,
): Promise<FileRead> {
  const { offset, length } = location;
  const sync = length <= SYNC_READ_MAX;
  const lease = pooledLength(length) ? readPool.lease(length) : undefined;
  try {
    const bytes = sync
      ? volume.file.readNow(offset, length, lease?.bytes)
      : await volume.file.read(offset, length, lease?.bytes);
    const needle = decodeNeedle(bytes);
    if (typeof needle === 'string') throw corrupt(key, location, needle);
    const header = checkHeader(key, location, needle, cookie);
    const info = infoOf(header, needle.contentType, location);
    // Verified: cached, unless the key was retired or moved while an async read was out.
    const keep =
      state.cache.enabled &&
      state.cache.accepts(header.dataSize, info.contentType) &&
      (sync || state.live.holds(key, volume.id, offset));
    let whole: FileRead;
    if (keep) {
      whole = state.cache.fill(info, needle.data); // a copy: the lease is not needed any more
      lease?.release();
    } else {
      whole = lease
        ? { info, body: needle.data, release: lease.release }
        : { info, body: needle.data };
    }
    return range ? partOf(whole, range) : whole;
  } catch (err) {
    lease?.release();
    throw err;
  }
}

/** What `readFile` would answer, without the bytes. */
export async function headFile(
  state: ReadState,
  key: Key,
  cookie: number | undefined,
): Promise<FileInfo> {
  const location = locate(state, key);
  const cached = cachedRead(state, key, location, cookie);
  if (cached !== undefined) return cached.info;
  try {
    const { header, contentType } = readHead(state, key, location, cookie);
    return infoOf(header, contentType, location);
  } catch (err) {
    noteCorrupt(state, location, err);
    throw err;
  }
}

/** A read answers `corrupt`: the store's observers are told (once per read). */
function noteCorrupt(state: ReadState, location: NeedleLocation, err: unknown): void {
  if (isStoreError(err, 'corrupt')) state.telemetry.corruptRead(location.volume);
}

/**
 * The cache's whole-file read of the live file at `location`, if it holds one: no system call,
 * no checksum (the bytes were verified when cached). The cookie is checked as a read from the
 * volume checks it; an entry of a file that compaction moved is brought to its new place.
 */
function cachedRead(
  state: ReadState,
  key: Key,
  location: NeedleLocation,
  cookie: number | undefined,
): FileRead | undefined {
  if (location.length > CACHEABLE_NEEDLE) return undefined;
  let read = state.cache.get(key);
  if (read === undefined) return undefined;
  if (cookie !== undefined && read.info.cookie !== cookie) throw notFound(key);
  if (read.info.offset !== location.offset || read.info.volume !== location.volume) {
    read = state.cache.moved(key, location.volume, location.offset);
  }
  return read;
}

/** A range of a whole-file read: a view of the same bytes, lent as they are. */
function partOf(whole: FileRead, range: ByteRange): FileRead {
  const { info, release } = whole;
  const body = (whole.body as Uint8Array).subarray(range.start, range.end + 1);
  return release ? { info, body, release } : { info, body };
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
