import {
  type BlobStore,
  type ByteRange,
  DEFAULT_CONTENT_TYPE,
  type FileInfo,
  type FileRead,
  type Key,
  type PutInput,
  type Readiness,
  type StoreCapabilities,
  StoreError,
  type StoreStatus,
  type SyncReport,
} from '../../storage/index.ts';
import { checkReplicaId, fileInfo, randomCookie } from '../file-info.ts';
import { readBody } from '../read-body.ts';

interface MemoryFile {
  info: FileInfo;
  bytes: Uint8Array;
}

export interface MemoryStoreOptions {
  /** Serve reads only: every write is refused with `read_only`. */
  readOnly?: boolean;
}

/**
 * The port held in a Map: for tests, and for fetch-compatible hosts without a filesystem.
 * Nothing survives the process; "durable" here means "in this Map".
 */
export class MemoryStore implements BlobStore {
  /** No volumes, so no operator calls (the admin routes answer 501); replica writes, yes. */
  readonly capabilities: StoreCapabilities = {
    replicas: {
      putReplica: (key, cookie, input) => this.#putReplica(key, cookie, input),
      listKeys: async (after, limit) =>
        [...this.#files.keys()]
          .filter((key) => key > after)
          .sort((a, b) => a - b)
          .slice(0, Math.max(0, limit)),
    },
  };
  readonly #files = new Map<Key, MemoryFile>();
  #nextKey = 1;
  #deleted = 0;
  #closed = false;
  readonly #readOnly: boolean;

  constructor(options: MemoryStoreOptions = {}) {
    this.#readOnly = options.readOnly ?? false;
  }

  async put(input: PutInput): Promise<FileInfo> {
    this.#assertWritable();
    const bytes = await readBody(input);
    this.#assertOpen();
    return this.#store(this.#nextKey++, randomCookie(), bytes, input.contentType);
  }

  async get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead> {
    const file = this.#live(key, cookie);
    const bytes = range ? file.bytes.subarray(range.start, range.end + 1) : file.bytes;
    return { info: { ...file.info }, body: bytes.slice() };
  }

  async head(key: Key, cookie?: number): Promise<FileInfo> {
    return { ...this.#live(key, cookie).info };
  }

  async replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo> {
    this.#live(key, cookie);
    this.#assertWritable();
    const bytes = await readBody(input);
    // The body took time to arrive: the key may have gone meanwhile.
    this.#live(key, cookie);
    const info = this.#store(this.#nextKey++, randomCookie(), bytes, input.contentType);
    this.#retire(key);
    return info;
  }

  async delete(key: Key, cookie?: number): Promise<void> {
    this.#live(key, cookie);
    this.#assertWritable();
    this.#retire(key);
  }

  async sync(): Promise<SyncReport> {
    this.#assertOpen();
    return { volumes: 0, durationMs: 0 };
  }

  async status(): Promise<StoreStatus> {
    this.#assertOpen();
    let liveBytes = 0;
    for (const file of this.#files.values()) liveBytes += file.bytes.byteLength;
    return {
      volumes: [],
      liveNeedles: this.#files.size,
      deletedNeedles: this.#deleted,
      bytes: liveBytes,
      liveBytes,
      garbageBytes: 0,
      garbageRatio: 0,
      nextKey: this.#nextKey,
    };
  }

  async readiness(): Promise<Readiness> {
    if (this.#closed) return { ready: false, reason: 'the store is closed' };
    if (this.#readOnly) return { ready: false, reason: 'the store is read-only' };
    return { ready: true };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async #putReplica(key: Key, cookie: number, input: PutInput): Promise<FileInfo> {
    checkReplicaId(key, cookie);
    this.#assertWritable();
    const bytes = await readBody(input);
    this.#assertOpen();
    const contentType = input.contentType ?? DEFAULT_CONTENT_TYPE;
    const held = this.#files.get(key);
    if (held) {
      const same =
        held.info.cookie === cookie &&
        held.info.contentType === contentType &&
        equalBytes(held.bytes, bytes);
      if (same) return { ...held.info };
      throw new StoreError('conflict', `key ${key} already holds another file`);
    }
    if (key >= this.#nextKey) this.#nextKey = key + 1;
    return this.#store(key, cookie, bytes, contentType);
  }

  #store(key: Key, cookie: number, bytes: Uint8Array, contentType: string | undefined): FileInfo {
    const info = fileInfo({
      key,
      size: bytes.byteLength,
      volume: 1,
      offset: 0,
      cookie,
      contentType: contentType ?? DEFAULT_CONTENT_TYPE,
    });
    // Own copies: the caller may reuse its buffer (or a stream's chunk) and change what it got back;
    // content under a key never changes.
    this.#files.set(key, { info, bytes: bytes.slice() });
    return { ...info };
  }

  #retire(key: Key): void {
    this.#files.delete(key);
    this.#deleted++;
  }

  /** The live file under `key`; with a cookie, only if it is the file's (else as if absent). */
  #live(key: Key, cookie?: number): MemoryFile {
    this.#assertOpen();
    const file = this.#files.get(key);
    if (!file || (cookie !== undefined && file.info.cookie !== cookie)) {
      throw new StoreError('not_found', `no file with key ${key}`);
    }
    return file;
  }

  #assertWritable(): void {
    this.#assertOpen();
    if (this.#readOnly) throw new StoreError('read_only', 'this store is read-only');
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('closed', 'the store is closed');
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options);
}
