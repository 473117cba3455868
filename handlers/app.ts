import { Hono } from 'hono';
import type { BlobStore } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { createErrorHandler, methodNotAllowed, noRoute } from './errors.ts';
import { createFile, deleteFile, readFile, replaceFile } from './file-routes.ts';
import { storeStatus, syncStore } from './store-routes.ts';

export interface CreateAppOptions {
  store: BlobStore;
  /** Largest upload accepted, in bytes; larger ones get 413 and nothing is stored. */
  maxBody: number;
  /**
   * Told about every error answered with a 5xx: bugs (the client sees only a generic 500) and
   * disk trouble such as a corrupt needle or a failing disk. Default: console.error.
   */
  onUnexpectedError?: (err: unknown) => void;
}

/**
 * The HTTP face of a store. The app serves `app.fetch(request)` on any fetch-compatible host and
 * can be mounted with `parent.route(prefix, app)`; under a mount, paths this app does not know
 * are left to the parent's `notFound`, as Hono does not lend a sub-app's to its parent.
 */
export function createApp(options: CreateAppOptions): Hono<AppEnv> {
  const { store, maxBody, onUnexpectedError = logUnexpected } = options;
  if (!Number.isSafeInteger(maxBody) || maxBody < 0) {
    throw new RangeError(`maxBody must be a non-negative integer, got ${maxBody}`);
  }

  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler(onUnexpectedError));
  app.notFound(noRoute);
  app.use(async (c, next) => {
    c.set('store', store);
    c.set('maxBody', maxBody);
    try {
      await next();
    } catch (thrown) {
      // Hono hands only Error objects to onError and rethrows anything else out of fetch().
      throw thrown instanceof Error
        ? thrown
        : new Error('a non-Error was thrown', { cause: thrown });
    }
  });

  // Each path's catch-all comes after its routes and answers every other method with 405.
  app.post('/file', ...createFile);
  app.all('/file', methodNotAllowed(['POST']));

  app.get('/file/:key', ...readFile); // GET and HEAD: see readFile
  app.put('/file/:key', ...replaceFile);
  app.delete('/file/:key', ...deleteFile);
  app.all('/file/:key', methodNotAllowed(['GET', 'HEAD', 'PUT', 'DELETE']));

  app.delete('/sync', ...syncStore);
  app.all('/sync', methodNotAllowed(['DELETE']));

  app.get('/status', ...storeStatus);
  app.all('/status', methodNotAllowed(['GET', 'HEAD']));

  return app;
}

function logUnexpected(err: unknown): void {
  console.error('haystack: unexpected error while serving a request', err);
}
