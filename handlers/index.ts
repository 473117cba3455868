export { type ClosingResponse, releaseAfterClose, takeAfterSend } from './after-send.ts';
export { type CreateAppOptions, createApp } from './app.ts';
export type { AppEnv } from './env.ts';
export { type ErrorBody, type ErrorCode, noRoute, statusOf } from './errors.ts';
export type { StoredFileJson } from './file-response.ts';
export type { Logger } from './logger.ts';
export { type CreateReplicaAppOptions, createReplicaApp } from './replica-routes.ts';
