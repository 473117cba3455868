import type { Handler } from 'hono';
import type { BlobStore } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { errorsAsErrors } from './errors.ts';

/** DELETE /sync (answers once every volume and index is on disk) and GET /status. */
export function storeRoutes(store: BlobStore): {
  syncStore: Handler<AppEnv>;
  storeStatus: Handler<AppEnv>;
} {
  return {
    syncStore: errorsAsErrors(async (c) => {
      const report = await store.sync();
      return c.json({ synced: true as const, ...report }, 200);
    }),
    storeStatus: errorsAsErrors(async (c) => c.json(await store.status(), 200)),
  };
}
