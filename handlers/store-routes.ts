import type { Handler } from 'hono';
import type { BlobStore } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { errorsAsErrors } from './errors.ts';
import { jsonAnswer } from './json-answer.ts';

/** DELETE /sync (answers once every volume and index is on disk) and GET /status. */
export function storeRoutes(store: BlobStore): {
  syncStore: Handler<AppEnv>;
  storeStatus: Handler<AppEnv>;
} {
  return {
    syncStore: errorsAsErrors(async (c) => {
      const report = await store.sync();
      return jsonAnswer(c, { synced: true as const, ...report }, 200);
    }),
    storeStatus: errorsAsErrors(async (c) => jsonAnswer(c, await store.status(), 200)),
  };
}
