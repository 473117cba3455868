export * from './errors.ts';
export * from './replica-api.ts';
export type * from './store.ts';
export * from './types.ts';
