import { createMemoryStore, type MemoryStore } from '../../adapters/memory/memory-store.ts';
import { type BlobStore, StoreError } from '../../storage/index.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { describeStore } from './describe-store.ts';

describeStore('memory', async () => {
  const store = createMemoryStore();
  return { store, cleanup: () => store.close() };
});

/**
 * One handle on a memory store that outlives it, the way a data directory outlives a process:
 * closing the handle leaves the data for the next one. This runs the suite's close-and-reopen
 * checks before a persistent adapter exists, so that those checks are known to pass on a store
 * that keeps everything. It also runs the whole contract through `DelegatingStore`, so that a
 * forwarder that lost an argument (a cookie, a range) fails the contract.
 */
function handle(data: MemoryStore): BlobStore {
  let closed = false;
  return new DelegatingStore(data, {
    before: () => {
      if (closed) throw new StoreError('closed', 'this handle is closed');
    },
    close: async () => {
      closed = true;
    },
  });
}

describeStore('memory behind reopenable handles', async () => {
  const data = createMemoryStore();
  return {
    store: handle(data),
    reopen: async () => handle(data),
    cleanup: () => data.close(),
  };
});
