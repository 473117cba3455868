import { createFactory } from 'hono/factory';
import type { AppEnv } from './env.ts';

const factory = createFactory<AppEnv>();

/** DELETE /sync: answers once every volume and index is on disk. */
export const syncStore = factory.createHandlers(async (c) => {
  const report = await c.get('store').sync();
  return c.json({ synced: true as const, ...report }, 200);
});

/** GET /status */
export const storeStatus = factory.createHandlers(async (c) => {
  return c.json(await c.get('store').status(), 200);
});
