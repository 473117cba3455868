import type { Env, Handler } from 'hono';
import { methodNotAllowed } from './errors.ts';

/**
 * One route per path, which picks the handler by method and answers any other with 405: a
 * request matches a single handler, which Hono runs without composing a chain. `handlers` are
 * in the order `Allow` lists them.
 */
export function byMethod<E extends Env>(
  handlers: ReadonlyArray<readonly [string, Handler<E>]>,
): Handler<E> {
  const byName = new Map(handlers);
  const notAllowed = methodNotAllowed(handlers.map(([method]) => method)) as Handler<E>;
  return (c, next) => (byName.get(c.req.method) ?? notAllowed)(c, next);
}
