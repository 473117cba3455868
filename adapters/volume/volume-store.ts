import { access, rename, rm, writeFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import {
  type BlobStore,
  type ByteRange,
  type CompactReport,
  DEFAULT_CONTENT_TYPE,
  type FileInfo,
  type FileRead,
  isStoreError,
  type Key,
  MAX_CONTENT_TYPE_LENGTH,
  type PutInput,
  type StoreCapabilities,
  StoreError,
  type StoreStatus,
  type SyncReport,
  type VolumeStatus,
} from '../../storage/index.ts';
import { fileInfo, randomCookie } from '../file-info.ts';
import { lockBody, readBody, tooLarge } from '../read-body.ts';
import { AutoCompactor } from './auto-compact.ts';
import { copyLiveNeedles } from './compact.ts';
import {
  indexPath,
  listVolumes,
  readOnlyMarkerPath,
  unfinishedVolume,
  volumePath,
} from './data-dir.ts';
import { syncDirectory } from './fs-util.ts';
import { deferred } from './group-commit.ts';
import { type IndexEntry, IndexWriter, MAX_VOLUME_BYTES } from './index-file.ts';
import { LiveSet, loadVolume } from './load.ts';
import { type DirectoryLock, lockDirectory } from './lock.ts';
import {
  decodeNeedle,
  encodeNeedleParts,
  FOOTER_SIZE,
  footer,
  HEADER_SIZE,
  type NeedleHeader,
  NeedleKind,
  needleHead,
  needleLength,
  readHeader,
  TOMBSTONE_LENGTH,
  tombstone,
} from './needle.ts';
import type { NeedleLocation } from './needle-map.ts';
import { PackedNeedleMap as CompactNeedleMap } from './packed-needle-map.ts';
import { GATHER_MAX, spoolBody } from './spool.ts';
import { removeLeftovers } from './temp-files.ts';
import type { Slot, Volume } from './volume.ts';
import { SUPERBLOCK_SIZE, VolumeFile } from './volume-file.ts';

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
  /** Where start-up findings and automatic compactions go. */
  log?: (line: string) => void;
}

export const DEFAULT_VOLUME_SIZE = 4 * 1024 ** 3;

/** Needles up to this size are read whole (one read) and verified before any byte is answered. */
const WHOLE_READ = 4 * 1024 * 1024;
/** Needles up to this size are read on the event loop's thread (see VolumeFile.readNow). */
const SYNC_READ_MAX = 256 * 1024;
/**
 * A writable volume that would have to make way for a new one while this share of it or more is
 * holes and deleted files (or uploads still arriving, which may yet fail) is compacted in place
 * instead: so volumes are only started for data that was really stored.
 */
const COMPACT_IN_PLACE_SHARE = 0.5;
/** Large uploads are written in pieces of about this size. */
const WRITE_CHUNK = 1024 * 1024;

/** The file-backed volume adapter of the storage port. */
export class VolumeStore implements BlobStore {
  /** Its operator calls are its own `compact` and `setVolumeReadOnly`. */
  readonly capabilities: StoreCapabilities = { volumes: this };
  readonly #dir: string;
  readonly #fsync: FsyncMode;
  readonly #volumeSize: number;
  readonly #maxStreamingBytes: number;
  readonly #readOnly: boolean;
  readonly #lock: DirectoryLock;
  readonly #live: LiveSet;
  readonly #volumes: Map<number, Volume>;
  /** The volume that takes appends: the newest. Older ones are read-only. */
  #writable: Volume;
  /** A new writable volume being created because the current one is full. */
  #rollingOver: Promise<void> | undefined;
  /** The full writable volume being compacted in place rather than rolled over. */
  #reclaiming: Promise<void> | undefined;
  /** Set while the writable volume is compacted in place: appends wait for it. */
  #appendsPaused: Promise<void> | undefined;
  /** Slots that uploads still arriving from clients stream into, and their volumes. */
  readonly #streaming = new Map<Slot, Volume>();
  #streamingBytes = 0;
  #compacting: Promise<unknown> = Promise.resolve();
  #nextKey: number;
  #closing: Promise<void> | undefined;
  /** Set when a flush failed: what is on disk is unknown, so no more writes until restart. */
  #broken: StoreError | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Writes that retire a key (delete, replace) run one at a time per key. */
  readonly #keyQueues = new Map<Key, Promise<unknown>>();
  readonly #autoCompactor: AutoCompactor | undefined;
  readonly #log: (line: string) => void;

  private constructor(
    options: Required<
      Pick<
        VolumeStoreOptions,
        'dir' | 'fsync' | 'volumeSize' | 'maxStreamingBytes' | 'readOnly' | 'log'
      >
    > &
      Pick<VolumeStoreOptions, 'compactAt'>,
    lock: DirectoryLock,
    live: LiveSet,
    volumes: Map<number, Volume>,
    writable: Volume,
  ) {
    this.#dir = options.dir;
    this.#fsync = options.fsync;
    this.#volumeSize = options.volumeSize;
    this.#maxStreamingBytes = options.maxStreamingBytes;
    this.#readOnly = options.readOnly;
    this.#lock = lock;
    this.#live = live;
    this.#volumes = volumes;
    this.#writable = writable;
    this.#nextKey = live.maxKey + 1;
    this.#log = options.log;
    this.#autoCompactor =
      options.compactAt === undefined
        ? undefined
        : new AutoCompactor(
            { mostGarbage: () => this.#sealedWithMostGarbage(), compact: (id) => this.compact(id) },
            options.compactAt,
            options.log,
          );
  }

  static async open(options: VolumeStoreOptions): Promise<VolumeStore> {
    const {
      dir,
      fsync = 'always',
      volumeSize = DEFAULT_VOLUME_SIZE,
      maxStreamingBytes = Math.floor(volumeSize / 4),
      readOnly = false,
      compactAt,
      log = () => {},
    } = options;
    if (!Number.isSafeInteger(volumeSize) || volumeSize < 1024 || volumeSize > MAX_VOLUME_BYTES) {
      throw new RangeError(`volumeSize must be from 1024 to ${MAX_VOLUME_BYTES} bytes`);
    }
    if (!Number.isSafeInteger(maxStreamingBytes) || maxStreamingBytes < 0) {
      throw new RangeError(`maxStreamingBytes must be a byte count, got ${maxStreamingBytes}`);
    }
    if (compactAt !== undefined && !(compactAt > 0 && compactAt <= 1)) {
      throw new RangeError(`compactAt must be above 0 and at most 1, got ${compactAt}`);
    }
    const ids = await listVolumes(dir);
    const lock = await lockDirectory(dir);
    const unfinished = await unfinishedVolume(dir, ids).catch(async (err) => {
      await lock.release();
      throw err;
    });
    if (unfinished !== undefined) {
      await rm(volumePath(dir, unfinished));
      ids.pop();
      log(
        `volume ${unfinished}: removed an unfinished, empty volume file (a crash while creating it)`,
      );
    }
    const live = new LiveSet(new CompactNeedleMap());
    const volumes = new Map<number, Volume>();
    try {
      for (const name of await removeLeftovers(dir)) log(`removed ${name}, left by a crash`);
      for (const id of ids) {
        const file = await VolumeFile.open(volumePath(dir, id), id);
        const { volume, report } = await loadVolume(dir, file, live);
        volumes.set(id, volume);
        volume.readOnly = await exists(readOnlyMarkerPath(dir, id));
        if (report.indexRebuilt) log(`volume ${id}: no usable index, rebuilt it by scanning`);
        if (report.indexCut) {
          log(
            `volume ${id}: index trusted for ${report.indexed} entries, the rest rebuilt by scanning`,
          );
        }
        for (const { offset, length, problem } of report.damaged) {
          log(`volume ${id}: ${length} damaged bytes at offset ${offset} (${problem}), skipped`);
        }
        if (report.tornBytes > 0) {
          log(`volume ${id}: cut a torn tail of ${report.tornBytes} bytes (an unfinished write)`);
        }
      }
      if (volumes.size === 0) {
        const file = await VolumeFile.create(volumePath(dir, 1), 1);
        volumes.set(1, (await loadVolume(dir, file, live)).volume);
      }
    } catch (err) {
      await Promise.all([...volumes.values()].map((v) => closeVolume(v).catch(() => {})));
      await lock.release();
      throw err;
    }
    const writable = volumes.get(Math.max(...volumes.keys())) as Volume;
    const store = new VolumeStore(
      {
        dir,
        fsync,
        volumeSize,
        maxStreamingBytes,
        readOnly,
        log,
        ...(compactAt === undefined ? {} : { compactAt }),
      },
      lock,
      live,
      volumes,
      writable,
    );
    // Garbage found at start-up (holes of failed uploads included) counts like new garbage.
    store.#autoCompactor?.poke();
    return store;
  }

  put(input: PutInput): Promise<FileInfo> {
    return this.#track(() => this.#write(input, undefined));
  }

  replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo> {
    return this.#track(() =>
      this.#exclusive(key, async () => {
        await this.#locateFile(key, cookie);
        const info = await this.#write(input, key);
        this.#autoCompactor?.poke();
        return info;
      }),
    );
  }

  delete(key: Key, cookie?: number): Promise<void> {
    return this.#track(() =>
      this.#exclusive(key, async () => {
        await this.#locateFile(key, cookie);
        this.#assertWritable();
        await this.#append([tombstone(key)], (offset) => [{ key, offset, length: 0 }]);
        this.#autoCompactor?.poke();
      }),
    );
  }

  get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead> {
    return this.#track(async () => {
      const location = this.#locate(key);
      const volume = this.#volume(location);
      if (location.length <= WHOLE_READ) {
        const bytes =
          location.length <= SYNC_READ_MAX
            ? volume.file.readNow(location.offset, location.length)
            : await volume.file.read(location.offset, location.length);
        const needle = decodeNeedle(bytes);
        if (typeof needle === 'string') throw corrupt(key, location, needle);
        const header = this.#checkHeader(key, location, needle, cookie);
        const data = range ? needle.data.subarray(range.start, range.end + 1) : needle.data;
        return { info: this.#info(header, needle.contentType, location), body: data };
      }
      const file = volume.file;
      const { header, contentType, head } = await this.#readHead(key, location, cookie);
      const info = this.#info(header, contentType, location);
      return { info, body: streamData(file, location, head, header.dataSize, range) };
    });
  }

  head(key: Key, cookie?: number): Promise<FileInfo> {
    return this.#track(async () => {
      const location = this.#locate(key);
      const { header, contentType } = await this.#readHead(key, location, cookie);
      return this.#info(header, contentType, location);
    });
  }

  sync(): Promise<SyncReport> {
    return this.#track(() => this.#syncAll());
  }

  status(): Promise<StoreStatus> {
    return this.#track(async () => {
      const volumes = [...this.#volumes.values()].map((volume) => {
        const { liveNeedles, liveBytes, deletedNeedles, deadBytes } = volume.counts;
        return {
          id: volume.id,
          bytes: volume.tail,
          liveNeedles,
          deletedNeedles,
          liveBytes,
          // Deleted and replaced files and holes; not tombstones, which may retire keys elsewhere.
          garbageBytes: deadBytes,
          garbageRatio: garbageRatio(volume),
          readOnly: this.#sealed(volume),
        };
      });
      const sum = (pick: (v: (typeof volumes)[number]) => number) =>
        volumes.reduce((total, v) => total + pick(v), 0);
      const bytes = sum((v) => v.bytes);
      const garbageBytes = sum((v) => v.garbageBytes);
      return {
        volumes,
        liveNeedles: sum((v) => v.liveNeedles),
        deletedNeedles: sum((v) => v.deletedNeedles),
        bytes,
        liveBytes: sum((v) => v.liveBytes),
        garbageBytes,
        garbageRatio: ratio(garbageBytes, bytes),
        nextKey: this.#nextKey,
      };
    });
  }

  /** Takes no more appends: marked read-only, or no longer the newest. */
  #sealed(volume: Volume): boolean {
    return volume.readOnly || volume !== this.#writable;
  }

  /** For automatic compaction: cheap enough to ask after every delete. */
  #sealedWithMostGarbage(): { id: number; garbageRatio: number } | undefined {
    let most: { id: number; garbageRatio: number } | undefined;
    for (const volume of this.#volumes.values()) {
      if (!this.#sealed(volume)) continue;
      const share = garbageRatio(volume);
      if (share > (most?.garbageRatio ?? 0)) most = { id: volume.id, garbageRatio: share };
    }
    return most;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#inFlight);
      try {
        // The data must be on disk; an index that cannot be written now only lags (see
        // IndexWriter.close), and the next start-up scans what it misses. After a failed flush,
        // another proves nothing: with fsync `always` every acknowledged write was flushed
        // before its answer, with `never` acknowledged writes may be lost, and close says so.
        if (this.#broken) {
          if (this.#fsync === 'never') throw this.#broken;
        } else {
          for (const volume of this.#volumes.values())
            await volume.flush().catch((err) => {
              throw diskError(err);
            });
        }
      } finally {
        await Promise.allSettled([...this.#volumes.values()].map(closeVolume));
        await this.#lock.release();
      }
    })();
    return this.#closing;
  }

  /**
   * Rewrites volumes without their dead needles and holes, one at a time, while reads and writes
   * go on. The writable volume is first closed to appends (a new one takes them), unless it is
   * mostly garbage: then it is compacted in place, appends waiting for the copy, which is short
   * (at most half the volume). The copy is synced
   * under a temp name and renamed over the volume; a crash before the rename leaves the old
   * volume (the temp files are removed at start-up), after it the new one (its old index no
   * longer matches and is rebuilt by scanning).
   */
  compact(id?: number): Promise<CompactReport[]> {
    const run = async () => {
      this.#assertWritable();
      const targets =
        id === undefined
          ? [...this.#volumes.values()].filter((v) => v.counts.deadBytes > 0)
          : [this.#volumes.get(id) ?? throwNotFound(`no volume ${id}`)];
      const reports: CompactReport[] = [];
      for (const volume of targets) reports.push(await this.#compactVolume(volume));
      return reports;
    };
    // One compaction at a time; close() waits for it like for any operation.
    const next = this.#compacting.catch(() => {}).then(() => this.#track(run));
    this.#compacting = next;
    return next;
  }

  async #compactVolume(volume: Volume): Promise<CompactReport> {
    const started = performance.now();
    if (volume === this.#writable && this.#mostlyGarbage(volume)) {
      const resume = deferred();
      this.#appendsPaused = resume.promise;
      try {
        return await this.#copyWithoutGarbage(volume, started, true);
      } finally {
        this.#appendsPaused = undefined;
        resume.resolve();
      }
    }
    if (volume === this.#writable) {
      this.#rollingOver ??= this.#rollOver().finally(() => {
        this.#rollingOver = undefined;
      });
      await this.#rollingOver;
    }
    return this.#copyWithoutGarbage(volume, started, false);
  }

  /**
   * Holes, deleted files, and uploads still streaming in (which may yet fail and leave holes)
   * make up at least COMPACT_IN_PLACE_SHARE of the volume.
   */
  #mostlyGarbage(volume: Volume): boolean {
    let pending = 0;
    for (const [slot, holder] of this.#streaming) if (holder === volume) pending += slot.length;
    return volume.counts.deadBytes + pending >= COMPACT_IN_PLACE_SHARE * volume.tail;
  }

  /** The copy and swap of a volume that takes no appends; writes in progress are waited for. */
  async #copyWithoutGarbage(
    volume: Volume,
    started: number,
    inPlace: boolean,
  ): Promise<CompactReport> {
    await volume.settled();
    const bytesBefore = volume.file.size;
    const map = this.#live.map;
    const copy = await copyLiveNeedles(this.#dir, volume.file, (key, offset) => {
      const location = map.get(key);
      return location?.volume === volume.id && location.offset === offset;
    });
    let index: IndexWriter;
    try {
      await rename(copy.tempVolume, volumePath(this.#dir, volume.id));
      await rename(copy.tempIndex, indexPath(this.#dir, volume.id));
      await syncDirectory(copy.tempVolume);
      index = await IndexWriter.open(
        indexPath(this.#dir, volume.id),
        copy.file.nonce,
        copy.needles,
        false,
      );
    } catch (err) {
      await copy.file.close();
      throw diskError(err);
    }
    // From here to the swap nothing awaits: a read sees the old location with the old file, or
    // the new location with the new file. Keys deleted during the copy keep their tombstone
    // elsewhere; their copied needle is garbage in the new volume.
    const counts = volume.counts;
    counts.liveNeedles = 0;
    counts.liveBytes = 0;
    counts.deletedNeedles = 0;
    counts.deadBytes = 0;
    for (const move of copy.moves) {
      const location = map.get(move.key);
      if (location?.volume === volume.id && location.offset === move.from) {
        map.set(move.key, { volume: volume.id, offset: move.to, length: move.length });
        counts.liveNeedles++;
        counts.liveBytes += move.length;
      } else {
        counts.deletedNeedles++;
        counts.deadBytes += move.length;
      }
    }
    const old = volume.replaceFile(copy.file, index);
    await old.index.close().catch(() => {});
    old.file.retire();
    return {
      volume: volume.id,
      bytesBefore,
      bytesAfter: copy.file.size,
      reclaimedBytes: bytesBefore - copy.file.size,
      needles: copy.needles,
      inPlace,
      durationMs: performance.now() - started,
    };
  }

  setVolumeReadOnly(id: number): Promise<VolumeStatus> {
    return this.#track(async () => {
      this.#assertWritable();
      const volume = this.#volumes.get(id);
      if (!volume) throw new StoreError('not_found', `no volume ${id}`);
      if (!volume.readOnly) {
        const marker = readOnlyMarkerPath(this.#dir, id);
        await writeFile(marker, '').catch((err: unknown) => {
          throw diskError(err);
        });
        await syncDirectory(marker);
        volume.readOnly = true; // appends to come go to a new volume
      }
      const status = (await this.status()).volumes.find((v) => v.id === id);
      return status as VolumeStatus;
    });
  }

  /** Stores a new file; with `retire`, also retires that key in the same append (replace). */
  async #write(input: PutInput, retire: Key | undefined): Promise<FileInfo> {
    this.#assertWritable();
    const contentType = input.contentType ?? DEFAULT_CONTENT_TYPE;
    const contentTypeLength = Buffer.byteLength(contentType, 'latin1');
    if (contentTypeLength > MAX_CONTENT_TYPE_LENGTH) {
      throw new StoreError(
        'bad_request',
        `the content type is over ${MAX_CONTENT_TYPE_LENGTH} bytes`,
      );
    }
    const { body, length } = input;
    const limit = input.limit ?? Number.POSITIVE_INFINITY;
    let data: Uint8Array;
    const streamed = body !== null && !(body instanceof Uint8Array);
    if (streamed && (length === undefined || length > GATHER_MAX)) {
      if (length !== undefined) {
        if (length > limit) throw tooLarge(input.limit ?? 0);
        const reserved = this.#reserveStreaming(needleLength(contentTypeLength, length), retire);
        if (reserved) return this.#streamFile(body, length, contentType, retire, reserved);
      }
      // Of unknown length, or no room for one more upload in flight: the bytes the client really
      // sends go to memory or a spool file first, and into the volume once they are all in.
      const spooled = await spoolBody(body, length ?? limit, this.#dir).catch((err: unknown) => {
        if (length !== undefined && isStoreError(err, 'too_large')) {
          throw lengthMismatch(length, length + 1);
        }
        throw diskError(err);
      });
      const size = spooled.kind === 'file' ? spooled.size : spooled.data.byteLength;
      if (length !== undefined && size !== length) {
        if (spooled.kind === 'file') await spooled.remove();
        throw lengthMismatch(length, size);
      }
      if (spooled.kind === 'file') {
        try {
          return await this.#streamFile(spooled.body, size, contentType, retire, undefined);
        } finally {
          await spooled.remove();
        }
      }
      data = spooled.data;
    } else {
      data = await readBody(input);
    }
    if (this.#broken) throw this.#broken;
    const key = this.#nextKey++;
    const cookie = randomCookie();
    const needle = encodeNeedleParts({ kind: NeedleKind.file, key, cookie, contentType, data });
    const needleBytes = needleLength(contentTypeLength, data.byteLength);
    if (retire !== undefined) needle.push(tombstone(retire));
    const { volume, offset } = await this.#append(needle, (at) =>
      entriesFor(key, at, needleBytes, retire),
    );
    return fileInfo({
      key,
      size: data.byteLength,
      volume: volume.id,
      offset,
      cookie,
      contentType,
    });
  }

  /**
   * A large upload of known length goes straight to its reserved place in the volume as it
   * arrives, checksummed on the way; writes of other clients carry on around it.
   */
  async #streamFile(
    body: ReadableStream<Uint8Array>,
    size: number,
    contentType: string,
    retire: Key | undefined,
    reserved: { volume: Volume; slot: Slot } | undefined,
  ): Promise<FileInfo> {
    const contentTypeLength = Buffer.byteLength(contentType, 'latin1');
    const length = needleLength(contentTypeLength, size);
    // Without space reserved by the caller, the body is on this machine: it cannot stall.
    const { volume, slot } = reserved ?? (await this.#reserve(slotLength(length, retire)));
    try {
      return await this.#streamInto(volume, slot, body, size, contentType, retire);
    } finally {
      if (this.#streaming.delete(slot)) this.#streamingBytes -= slot.length;
    }
  }

  /** Writes the body into its slot, checksummed on the way; any failure abandons the slot. */
  async #streamInto(
    volume: Volume,
    slot: Slot,
    body: ReadableStream<Uint8Array>,
    size: number,
    contentType: string,
    retire: Key | undefined,
  ): Promise<FileInfo> {
    const contentTypeLength = Buffer.byteLength(contentType, 'latin1');
    const length = needleLength(contentTypeLength, size);
    const key = this.#nextKey++;
    const cookie = randomCookie();
    try {
      const head = needleHead({ kind: NeedleKind.file, key, cookie, contentType }, size);
      let checksum = crc32(head);
      let pending: Buffer[] = [head];
      let pendingBytes = head.byteLength;
      let position = slot.offset;
      let received = 0;
      for await (const chunk of readChunks(body)) {
        received += chunk.byteLength;
        if (received > size) throw lengthMismatch(size, received);
        checksum = crc32(chunk, checksum);
        pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= WRITE_CHUNK) {
          await this.#writeTo(volume, pending, position);
          position += pendingBytes;
          pending = [];
          pendingBytes = 0;
        }
      }
      if (received !== size) throw lengthMismatch(size, received);
      pending.push(footer(checksum, contentTypeLength, size));
      if (retire !== undefined) pending.push(tombstone(retire));
      if (this.#broken) throw this.#broken;
      await this.#writeTo(volume, pending, position);
      await this.#durable(volume);
    } catch (err) {
      await this.#abandon(volume, slot);
      throw err;
    }
    this.#publish(volume, slot, entriesFor(key, slot.offset, length, retire));
    return fileInfo({ key, size, volume: volume.id, offset: slot.offset, cookie, contentType });
  }

  /** Appends whole needles, waits until they are durable, then makes them visible. */
  async #append(
    buffers: Buffer[],
    entries: (offset: number) => IndexEntry[],
  ): Promise<{ volume: Volume; offset: number }> {
    const { volume, slot } = await this.#reserve(
      buffers.reduce((total, b) => total + b.byteLength, 0),
    );
    try {
      await volume.write(slot, buffers).catch((err: unknown) => {
        throw diskError(err);
      });
      await this.#durable(volume);
    } catch (err) {
      await this.#abandon(volume, slot);
      throw err;
    }
    this.#publish(volume, slot, entries(slot.offset));
    return { volume, offset: slot.offset };
  }

  /** A write failed: its space is given back, or stays behind as a hole counted as garbage. */
  async #abandon(volume: Volume, slot: Slot): Promise<void> {
    if (!(await volume.abandon(slot))) return;
    this.#live.hole(volume.id, slot.length);
    this.#autoCompactor?.poke();
  }

  /**
   * Space for an upload still arriving from a client, or undefined if it must be spooled first:
   * the uploads in flight would hold more than `maxStreamingBytes`, or it does not fit in the
   * writable volume as it is. So a client that never sends its body holds a bounded share of
   * one volume, and never makes the store start a new one.
   */
  #reserveStreaming(
    needleBytes: number,
    retire: Key | undefined,
  ): { volume: Volume; slot: Slot } | undefined {
    const length = slotLength(needleBytes, retire);
    const volume = this.#writable;
    if (this.#appendsPaused || this.#rollingOver || this.#reclaiming || volume.readOnly) {
      return undefined;
    }
    if (this.#streamingBytes + length > this.#maxStreamingBytes) return undefined;
    if (volume.tail + length > this.#volumeSize) return undefined;
    const slot = volume.reserve(length);
    this.#streaming.set(slot, volume);
    this.#streamingBytes += length;
    return { volume, slot };
  }

  /**
   * Space for `length` bytes in the writable volume. When it is full, a new volume is started,
   * unless the full one is mostly garbage: then it is compacted in place first.
   */
  async #reserve(length: number): Promise<{ volume: Volume; slot: Slot }> {
    if (length > MAX_VOLUME_BYTES - SUPERBLOCK_SIZE) {
      throw new StoreError('too_large', `a file this large does not fit in a volume`);
    }
    let reclaimed = false;
    for (;;) {
      if (this.#appendsPaused) {
        await this.#appendsPaused;
        continue;
      }
      const volume = this.#writable;
      // An empty volume takes any needle, so a file larger than the volume size still fits.
      const fits = volume.tail === SUPERBLOCK_SIZE || volume.tail + length <= this.#volumeSize;
      if (fits && !volume.readOnly) {
        return { volume, slot: volume.reserve(length) };
      }
      if (!reclaimed && !volume.readOnly && this.#mostlyGarbage(volume)) {
        reclaimed = true;
        await this.#reclaimInPlace(volume);
        continue;
      }
      this.#rollingOver ??= this.#rollOver().finally(() => {
        this.#rollingOver = undefined;
      });
      await this.#rollingOver;
    }
  }

  /**
   * Compacts the full writable volume in place, once for every write waiting on it. If that
   * fails (a full disk, say), they go on to a new volume.
   */
  #reclaimInPlace(volume: Volume): Promise<void> {
    this.#reclaiming ??= this.compact(volume.id)
      .then(
        (reports) => {
          for (const { reclaimedBytes, bytesAfter } of reports) {
            this.#log(
              `volume ${volume.id}: full but mostly garbage, compacted in place (${reclaimedBytes} bytes reclaimed, ${bytesAfter} kept) instead of starting a new volume`,
            );
          }
        },
        (err: unknown) => {
          if (isStoreError(err, 'closed')) return;
          const reason = err instanceof Error ? err.message : String(err);
          this.#log(`volume ${volume.id}: compaction in place failed (${reason}), rolling over`);
        },
      )
      .finally(() => {
        this.#reclaiming = undefined;
      });
    return this.#reclaiming;
  }

  async #rollOver(): Promise<void> {
    const id = this.#writable.id + 1;
    const file = await VolumeFile.create(volumePath(this.#dir, id), id).catch((err: unknown) => {
      throw diskError(err);
    });
    const { volume } = await loadVolume(this.#dir, file, this.#live);
    this.#volumes.set(id, volume);
    this.#writable = volume;
  }

  async #writeTo(volume: Volume, buffers: Buffer[], position: number): Promise<void> {
    try {
      await volume.file.write(buffers, position);
    } catch (err) {
      throw diskError(err);
    }
  }

  async #durable(volume: Volume): Promise<void> {
    if (this.#fsync === 'never') return;
    await this.#flush(volume);
  }

  /**
   * Every flush of volume data goes through here, a write's or a `sync`'s. After a failed flush
   * the kernel may have dropped the dirty pages, and it reports that once, to one caller: a later
   * flush succeeds over the loss. Nothing written since the last good flush can be trusted, so
   * stop writing rather than guess (reads go on).
   */
  async #flush(volume: Volume): Promise<void> {
    try {
      await volume.flush();
    } catch (err) {
      this.#broken ??= new StoreError(
        'io_error',
        'a flush to disk failed; the store takes no more writes until it is restarted',
        { cause: err },
      );
      throw diskError(err);
    }
  }

  /** The write is durable: update the map, then queue its index entries in volume order. */
  #publish(volume: Volume, slot: Slot, entries: IndexEntry[]): void {
    for (const { key, offset, length } of entries) this.#live.apply(volume.id, key, offset, length);
    volume.complete(slot, entries);
  }

  /** The live file's location; with a cookie, only if the stored cookie matches. */
  async #locateFile(key: Key, cookie: number | undefined): Promise<NeedleLocation> {
    const location = this.#locate(key);
    if (cookie !== undefined) await this.#readHead(key, location, cookie);
    return location;
  }

  async #readHead(key: Key, location: NeedleLocation, cookie: number | undefined) {
    const volume = this.#volume(location);
    const length = Math.min(location.length, HEADER_SIZE + MAX_CONTENT_TYPE_LENGTH);
    const head = volume.file.readNow(location.offset, length);
    const header = readHeader(head);
    if (typeof header === 'string') throw corrupt(key, location, header);
    this.#checkHeader(key, location, header, cookie);
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
  #checkHeader(
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

  #info(header: NeedleHeader, contentType: string, location: NeedleLocation): FileInfo {
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

  #locate(key: Key): NeedleLocation {
    // The map stores 53-bit integer keys; anything else must not alias a stored one.
    if (!Number.isSafeInteger(key) || key < 1) {
      throw new StoreError('bad_key', `${key} is not a key (an integer from 1 to 2^53-1)`);
    }
    const location = this.#live.map.get(key);
    if (!location) throw notFound(key);
    return location;
  }

  #volume(location: NeedleLocation): Volume {
    const volume = this.#volumes.get(location.volume);
    if (!volume) throw new StoreError('corrupt', `volume ${location.volume} is missing`);
    return volume;
  }

  async #syncAll(): Promise<SyncReport> {
    const started = performance.now();
    // After a failed flush, a flush that succeeds proves nothing about what was written before.
    if (this.#broken) throw this.#broken;
    try {
      for (const volume of this.#volumes.values()) {
        await this.#flush(volume);
        await volume.index.sync();
      }
    } catch (err) {
      throw diskError(err);
    }
    return { volumes: this.#volumes.size, durationMs: performance.now() - started };
  }

  #assertWritable(): void {
    if (this.#closing) throw closed();
    if (this.#readOnly) throw new StoreError('read_only', 'this server is read-only');
    if (this.#broken) throw this.#broken;
  }

  /** Runs an operation unless the store is closing, and lets `close` wait for it. */
  #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(closed());
    const promise = operation();
    this.#inFlight.add(promise);
    const forget = () => this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  async #exclusive<T>(key: Key, operation: () => Promise<T>): Promise<T> {
    const previous = this.#keyQueues.get(key);
    const current = (previous ?? Promise.resolve()).catch(() => {}).then(operation);
    this.#keyQueues.set(key, current);
    try {
      return await current;
    } finally {
      if (this.#keyQueues.get(key) === current) this.#keyQueues.delete(key);
    }
  }
}

export function openVolumeStore(options: VolumeStoreOptions): Promise<VolumeStore> {
  return VolumeStore.open(options);
}

/** A file needle's slot, with room for the tombstone of the key it replaces. */
function slotLength(needleBytes: number, retire: Key | undefined): number {
  return needleBytes + (retire === undefined ? 0 : TOMBSTONE_LENGTH);
}

function entriesFor(
  key: Key,
  offset: number,
  length: number,
  retire: Key | undefined,
): IndexEntry[] {
  const entries = [{ key, offset, length }];
  if (retire !== undefined) entries.push({ key: retire, offset: offset + length, length: 0 });
  return entries;
}

/**
 * A large file's bytes, read piece by piece from its place in the volume. A whole-file read is
 * checksummed as it goes and errors at the end if the needle is damaged; a range cannot be
 * checked against the whole-needle checksum, so it relies on the verified header.
 */
function streamData(
  file: VolumeFile,
  location: NeedleLocation,
  head: Buffer,
  dataSize: number,
  range: ByteRange | undefined,
): ReadableStream<Uint8Array> {
  const dataStart = location.offset + head.byteLength;
  const start = range?.start ?? 0;
  const end = range ? range.end + 1 : dataSize;
  let position = start;
  let checksum = crc32(head);
  // The file object was taken when the key was looked up: if compaction swaps the volume while
  // this streams, the download finishes from the old file, which stays open until then.
  file.retain();
  let released = false;
  const release = () => {
    if (!released) file.release();
    released = true;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (position >= end) {
          if (!range) {
            const footer = await file.read(dataStart + dataSize, FOOTER_SIZE);
            if (footer.readUInt32LE(0) !== checksum) throw corrupt(0, location, 'bad_checksum');
          }
          release();
          controller.close();
          return;
        }
        const piece = await file.read(dataStart + position, Math.min(WRITE_CHUNK, end - position));
        if (piece.byteLength === 0) throw corrupt(0, location, 'truncated');
        if (!range) checksum = crc32(piece, checksum);
        position += piece.byteLength;
        controller.enqueue(piece);
      } catch (err) {
        release();
        controller.error(err);
      }
    },
    cancel: release,
  });
}

/** Chunks of an upload; a failing or aborted client stream becomes `bad_request`. */
async function* readChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = lockBody(body);
  try {
    for (;;) {
      const result = await reader.read().catch((err: unknown) => {
        if (err instanceof StoreError) throw err; // from a body the store made (a spool file)
        throw new StoreError('bad_request', 'the upload was aborted before its end', {
          cause: err,
        });
      });
      if (result.done) return;
      yield result.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function lengthMismatch(declared: number, received: number): StoreError {
  const has = received > declared ? `more than ${declared}` : `${received}`;
  return new StoreError(
    'bad_request',
    `the body has ${has} bytes, but Content-Length said ${declared}`,
  );
}

function diskError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') {
    return new StoreError('no_space', 'the disk is full; nothing was stored', { cause: err });
  }
  // Not "nothing was stored": a write whose flush failed may still be found after a restart.
  return new StoreError(
    'io_error',
    `the disk failed (${code ?? 'unknown error'}); the request was not completed`,
    {
      cause: err,
    },
  );
}

function corrupt(key: Key, location: NeedleLocation, problem: string): StoreError {
  const what = key > 0 ? `file ${key}` : 'the file';
  return new StoreError(
    'corrupt',
    `${what} is damaged on disk (volume ${location.volume}, offset ${location.offset}: ${problem})`,
  );
}

function throwNotFound(message: string): never {
  throw new StoreError('not_found', message);
}

function notFound(key: Key): StoreError {
  return new StoreError('not_found', `no file with key ${key}`);
}

function closed(): StoreError {
  return new StoreError('closed', 'the store is closed');
}

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

function garbageRatio(volume: Volume): number {
  return ratio(volume.counts.deadBytes, volume.tail);
}

async function closeVolume(volume: Volume): Promise<void> {
  await volume.index.close();
  await volume.file.close();
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
