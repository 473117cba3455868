import { createHttpStore } from '../../adapters/http/index.ts';
import { serveVolumeStore } from '../support/served-store.ts';
import { describeStore } from './describe-store.ts';

/**
 * The contract of the storage port against the HTTP adapter: createHttpStore over a real server
 * on port 0 (createApp over a volume store in a temp dir, served by @hono/node-server), so every
 * behaviour the suite checks goes through the client, the public API and back. The server's
 * limit (64 MiB) is above every body the suite sends: the port's `limit` is the adapter's to keep.
 * Reopening is a new HTTP store over the same server, as a restarted client is. The replica
 * capability is not offered (not in the public API), so its part of the suite is skipped, and so
 * is the check of needle places: the API tells no offsets on reads (adapters/http/http-store.ts).
 */
describeStore('http (createApp over a volume store, on a real socket)', async () => {
  const remote = await serveVolumeStore();
  const store = createHttpStore({ baseUrl: remote.base });
  return {
    store,
    reopen: async () => createHttpStore({ baseUrl: remote.base }),
    cleanup: async () => {
      await store.close();
      await remote.close();
    },
  };
});
