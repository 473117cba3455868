export { createMemoryStore, MemoryStore, type MemoryStoreOptions } from './memory-store.ts';
