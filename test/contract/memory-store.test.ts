import { createMemoryStore, type MemoryStore } from '../../adapters/memory/memory-store.ts';
import {
  type BlobStore,
  type ByteRange,
  type FileInfo,
  type FileRead,
  type Key,
  type PutInput,
  type StoreCapabilities,
  StoreError,
  type StoreStatus,
  type SyncReport,
} from '../../storage/index.ts';
import { describeStore } from './describe-store.ts';
import { describeReplicas } from './replicas.ts';

describeStore('memory', async () => {
  const store = createMemoryStore();
  return { store, cleanup: () => store.close() };
});

describeReplicas('memory', async () => {
  const store = createMemoryStore();
  return { store, cleanup: () => store.close() };
});

/**
 * One handle on a memory store that outlives it, the way a data directory outlives a process:
 * closing the handle leaves the data for the next one. This runs the suite's close-and-reopen
 * checks before a persistent adapter exists, so that those checks are known to pass on a store
 * that keeps everything.
 */
class Handle implements BlobStore {
  readonly capabilities: StoreCapabilities = {};
  readonly #data: MemoryStore;
  #closed = false;

  constructor(data: MemoryStore) {
    this.#data = data;
  }

  async put(input: PutInput): Promise<FileInfo> {
    return this.#open().put(input);
  }

  async get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead> {
    return this.#open().get(key, range, cookie);
  }

  async head(key: Key, cookie?: number): Promise<FileInfo> {
    return this.#open().head(key, cookie);
  }

  async replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo> {
    return this.#open().replace(key, input, cookie);
  }

  async delete(key: Key, cookie?: number): Promise<void> {
    return this.#open().delete(key, cookie);
  }

  async sync(): Promise<SyncReport> {
    return this.#open().sync();
  }

  async status(): Promise<StoreStatus> {
    return this.#open().status();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): MemoryStore {
    if (this.#closed) throw new StoreError('closed', 'this handle is closed');
    return this.#data;
  }
}

describeStore('memory behind reopenable handles', async () => {
  const data = createMemoryStore();
  return {
    store: new Handle(data),
    reopen: async () => new Handle(data),
    cleanup: () => data.close(),
  };
});
