import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { openVolumeStore, type VolumeStore } from '../../adapters/volume/index.ts';
import { type CreateAppOptions, createApp } from '../../handlers/index.ts';
import type { BlobStore } from '../../storage/index.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface ServedStore {
  /** `http://127.0.0.1:{port}`: the app's root. */
  base: string;
  /** The volume store behind the app. */
  store: VolumeStore;
  /** Stops the server (cutting open connections), closes the store, removes its directory. */
  close(): Promise<void>;
}

/**
 * createApp over a volume store in a fresh temp dir, served by @hono/node-server on port 0: a
 * real remote for the HTTP client and adapter to talk to.
 */
export async function serveVolumeStore(
  options: Partial<Omit<CreateAppOptions, 'store'>> & {
    /** What the app serves instead of the volume store itself (a DelegatingStore over it). */
    wrap?: (store: VolumeStore) => BlobStore;
  } = {},
): Promise<ServedStore> {
  const { wrap, ...appOptions } = options;
  const dir = await makeTempDir('haystack-served-');
  const store = await openVolumeStore({ dir });
  const app = createApp({
    store: wrap ? wrap(store) : store,
    maxBody: 64 * 1024 * 1024,
    ...appOptions,
  });
  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve) => {
    const listening = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve({ server: listening as Server, port: (info as AddressInfo).port }),
    );
  });
  return {
    base: `http://127.0.0.1:${port}`,
    store,
    async close() {
      // An upload the client aborted may still be lingering (handlers/upload.ts): cut it.
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeAllConnections();
      await closed;
      await store.close();
      await removeTempDir(dir);
    },
  };
}
