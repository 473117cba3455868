export * from './errors.ts';
export type * from './store.ts';
export * from './types.ts';
