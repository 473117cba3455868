export * from './client.ts';
export { createHttpStore, type HttpStoreOptions } from './http-store.ts';
