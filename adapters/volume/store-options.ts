import { MAX_VOLUME_BYTES } from './index-file.ts';
import { DEFAULT_CACHE_SIZE } from './needle-cache.ts';

/**
 * `always` (default): a write is answered only once it is on disk (fdatasync; concurrent writes
 * share one). `never`: the OS decides when to write back; a crash of the machine (not of the
 * process) can lose acknowledged writes. `sync()` and `close()` flush in both modes.
 */
export type FsyncMode = 'always' | 'never';

export interface VolumeStoreOptions {
  dir: string;
  fsync?: FsyncMode;
  /**
   * A volume takes appends until the next needle would make it larger than this; then a new
   * volume is started. Default 4 GiB; at most 32 GiB (what the index's offsets address).
   */
  volumeSize?: number;
  /** Serve reads only: every write is refused with `read_only`. */
  readOnly?: boolean;
  /**
   * Compact a volume that takes no more appends once this share of its bytes is garbage (deleted
   * and replaced files), from 0 (exclusive) to 1. Default: never on its own (see `compact`).
   */
  compactAt?: number;
  /**
   * The most volume space that uploads still arriving may hold at once. An upload of declared
   * length over 1 MiB streams straight into space reserved for it in the writable volume, and a
   * client that goes away leaves that space behind as a hole. Past this many bytes in flight, or
   * when it does not fit in the writable volume, an upload is spooled to disk first and copied
   * in once complete: it costs what the client really sent, never what it declared. Default: a
   * quarter of `volumeSize`; 0 spools every such upload.
   */
  maxStreamingBytes?: number;
  /**
   * Bytes of memory for the cache of small files (Haystack's Cache: files up to 64 KiB, filled
   * on write and on read, served without touching the disk). Default 64 MiB; 0 turns it off.
   */
  cacheSize?: number;
  /**
   * Bytes of zeros written ahead of the writable volume's tail, so that a write's flush commits
   * data only, not also a new file size (see Presize in volume.ts). Default 8 MiB with fsync
   * `always`, 0 (none) with `never`, which does not flush per write; never past `volumeSize`.
   */
  presizeStep?: number;
  /** Where start-up findings and automatic compactions go. */
  log?: (line: string) => void;
}

export const DEFAULT_VOLUME_SIZE = 4 * 1024 ** 3;
export const DEFAULT_PRESIZE_STEP = 8 * 1024 ** 2;

/** The options with their defaults filled in and checked. */
export type StoreSettings = Required<Omit<VolumeStoreOptions, 'compactAt'>> &
  Pick<VolumeStoreOptions, 'compactAt'>;

export function storeSettings(options: VolumeStoreOptions): StoreSettings {
  const {
    dir,
    fsync = 'always',
    volumeSize = DEFAULT_VOLUME_SIZE,
    maxStreamingBytes = Math.floor(volumeSize / 4),
    readOnly = false,
    compactAt,
    cacheSize = DEFAULT_CACHE_SIZE,
    presizeStep = fsync === 'always' ? DEFAULT_PRESIZE_STEP : 0,
    log = () => {},
  } = options;
  if (!Number.isSafeInteger(volumeSize) || volumeSize < 1024 || volumeSize > MAX_VOLUME_BYTES) {
    throw new RangeError(`volumeSize must be from 1024 to ${MAX_VOLUME_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(maxStreamingBytes) || maxStreamingBytes < 0) {
    throw new RangeError(`maxStreamingBytes must be a byte count, got ${maxStreamingBytes}`);
  }
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) {
    throw new RangeError(`cacheSize must be a byte count, got ${cacheSize}`);
  }
  if (!Number.isSafeInteger(presizeStep) || presizeStep < 0) {
    throw new RangeError(`presizeStep must be a byte count, got ${presizeStep}`);
  }
  if (compactAt !== undefined && !(compactAt > 0 && compactAt <= 1)) {
    throw new RangeError(`compactAt must be above 0 and at most 1, got ${compactAt}`);
  }
  return {
    dir,
    fsync,
    volumeSize,
    maxStreamingBytes,
    readOnly,
    cacheSize,
    presizeStep,
    log,
    ...(compactAt === undefined ? {} : { compactAt }),
  };
}
