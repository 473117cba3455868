import {
  type BlobStore,
  type ByteRange,
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
import { checkKey, isCookie } from '../file-info.ts';
import { checkedUpload } from './checked-upload.ts';
import {
  type ClientOptions,
  createClient,
  type HaystackClient,
  type RemoteFile,
  type StoredFile,
} from './client.ts';
import { fileIdOf } from './file-ref.ts';
import { storeErrorOf } from './store-error-of.ts';

export interface HttpStoreOptions extends ClientOptions {
  /** The remote server's root, or where a parent app mounts it (`http://host/media`). */
  baseUrl: string | URL;
}

/**
 * The storage port over a Haystack server's public API: a Hono app (createApp) can front a
 * store that runs elsewhere. Writes are durable when the remote server says so.
 */
export function createHttpStore(options: HttpStoreOptions): BlobStore {
  const { baseUrl, ...clientOptions } = options;
  return new HttpStore(createClient(baseUrl, clientOptions));
}

/**
 * `volume` and `offset` of every FileInfo it answers: the public API tells them on upload only,
 * never on a read, and a file must answer the same info whichever call asked (the contract). 0 is
 * no volume's id (they count from 1): "not known here"; offset 0 as a cluster answers it.
 */
const UNKNOWN_PLACE = { volume: 0, offset: 0 } as const;

class HttpStore implements BlobStore {
  /** Operator calls and replica writes are not part of the public API. */
  readonly capabilities: StoreCapabilities = {};
  readonly #client: HaystackClient;
  #closed = false;

  constructor(client: HaystackClient) {
    this.#client = client;
  }

  async put(input: PutInput): Promise<FileInfo> {
    this.#checkOpen();
    const upload = checkedUpload(input);
    try {
      return infoOfStored(await this.#client.put(upload.body, uploadOptions(input)));
    } catch (err) {
      throw upload.refusal() ?? storeErrorOf(err);
    }
  }

  async get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead> {
    const ref = this.#refOf(key, cookie);
    try {
      const read = await this.#client.get(ref, range ? { range } : {});
      if (read.status !== (range ? 206 : 200)) {
        await read.body.cancel();
        throw new StoreError('io_error', `the remote store answered ${read.status} to a read`);
      }
      return { info: infoOfRemote(read.info), body: withStoreErrors(read.body) };
    } catch (err) {
      throw storeErrorOf(err);
    }
  }

  async head(key: Key, cookie?: number): Promise<FileInfo> {
    const ref = this.#refOf(key, cookie);
    try {
      return infoOfRemote(await this.#client.head(ref));
    } catch (err) {
      throw storeErrorOf(err);
    }
  }

  async replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo> {
    const ref = this.#refOf(key, cookie);
    const upload = checkedUpload(input);
    try {
      return infoOfStored(await this.#client.replace(ref, upload.body, uploadOptions(input)));
    } catch (err) {
      throw upload.refusal() ?? storeErrorOf(err);
    }
  }

  async delete(key: Key, cookie?: number): Promise<void> {
    const ref = this.#refOf(key, cookie);
    try {
      await this.#client.delete(ref);
    } catch (err) {
      throw storeErrorOf(err);
    }
  }

  async sync(): Promise<SyncReport> {
    this.#checkOpen();
    try {
      const { volumes, durationMs } = await this.#client.sync();
      return { volumes, durationMs };
    } catch (err) {
      throw storeErrorOf(err);
    }
  }

  async status(): Promise<StoreStatus> {
    this.#checkOpen();
    try {
      return await this.#client.status();
    } catch (err) {
      throw storeErrorOf(err);
    }
  }

  async readiness(): Promise<Readiness> {
    if (this.#closed) return { ready: false, reason: 'this store is closed' };
    return this.#client.readiness();
  }

  /** Releases this handle only: the remote server keeps serving (and syncs on its own stop). */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('closed', 'this store is closed');
  }

  /**
   * The file id a call sends: the key, or `{key},{cookie}`. A cookie no file can have names no
   * file (`not_found`, as the other adapters answer), so it is never sent.
   */
  #refOf(key: Key, cookie: number | undefined): number | string {
    this.#checkOpen();
    checkKey(key);
    if (cookie === undefined) return key;
    if (!isCookie(cookie)) throw new StoreError('not_found', `no file under key ${key}`);
    return fileIdOf(key, cookie);
  }
}

function uploadOptions(input: PutInput): { contentType?: string; length?: number } {
  return {
    ...(input.contentType === undefined ? {} : { contentType: input.contentType }),
    ...(input.length === undefined ? {} : { length: input.length }),
  };
}

function infoOfStored({ key, size, cookie, contentType, etag }: StoredFile): FileInfo {
  return { key, size, ...UNKNOWN_PLACE, cookie, contentType, etag };
}

function infoOfRemote({ key, size, cookie, contentType, etag }: RemoteFile): FileInfo {
  if (cookie === undefined) {
    throw new StoreError('io_error', `the remote store's ETag ${etag} does not carry the cookie`);
  }
  return { key, size, ...UNKNOWN_PLACE, cookie, contentType, etag };
}

/** A read's body whose failures are the port's (StoreError), as consumers of a store expect. */
function withStoreErrors(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await reader.read();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        } catch (err) {
          controller.error(storeErrorOf(err));
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}
