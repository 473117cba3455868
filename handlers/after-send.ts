/**
 * How a store's lent bytes (`FileRead.release`, storage/types.ts) get back to it once their
 * answer has been sent. Only the host knows when that is: a fetch handler sees its Response
 * consumed or its body stream pulled long before the bytes have left for the socket (measured:
 * docs/PERFORMANCE.md, "Read buffers"). So the routes leave the release with the Response they
 * answer, here, and a host that can tell when a response is done takes it; on a host that
 * never does (app.fetch, a Worker, a test), the entry goes with the Response to the collector
 * and the store just allocates anew.
 *
 * No Node import: a Node host's response is described by the little this module uses of it.
 */

const pending = new WeakMap<Response, () => void>();

/** Leaves `release` with `response`, for the host to call once it has been sent. */
export function releaseAfterSend(response: Response, release: (() => void) | undefined): Response {
  if (release !== undefined) pending.set(response, release);
  return response;
}

/**
 * What a host calls, with the Response it is about to send: the release to call once every
 * byte of it has been sent or dropped, if the routes left one. It is handed out once.
 */
export function takeAfterSend(response: Response): (() => void) | undefined {
  const release = pending.get(response);
  if (release !== undefined) pending.delete(response);
  return release;
}

/**
 * What `releaseAfterClose` needs of a Node response (`env.outgoing` on @hono/node-server): its
 * `close`, and whether it has been emitted already.
 */
export interface ClosingResponse {
  readonly closed?: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Wraps a fetch callback for @hono/node-server (HTTP/1.1, `node:http`) so that the bytes the
 * routes lent are given back when the response emits `close`: after `finish` (the socket took
 * the last byte) or after the connection died (Node let go of what it had not written). That is
 * the one moment proven safe (test/http/read-bytes.test.ts); `finish` alone, `prefinish` or the
 * body stream's last pull are not. A response closed before the answer was ready never gets the
 * bytes (a write to it is dropped), so the release is called at once.
 *
 * For a parent app on @hono/node-server: `serve({ fetch: releaseAfterClose(parent.fetch) })`.
 */
export function releaseAfterClose<E extends { outgoing: ClosingResponse }>(
  fetch: (request: Request, env: E) => Response | Promise<Response>,
): (request: Request, env: E) => Response | Promise<Response> {
  return (request, env) => {
    const answer = fetch(request, env);
    if (!isPromise(answer)) return handOver(answer, env.outgoing);
    return answer.then((response) => handOver(response, env.outgoing));
  };
}

function handOver(response: Response, outgoing: ClosingResponse): Response {
  const release = takeAfterSend(response);
  if (release === undefined) return response;
  if (outgoing.closed === true) release();
  else outgoing.once('close', release);
  return response;
}

function isPromise(value: Response | Promise<Response>): value is Promise<Response> {
  return typeof (value as Promise<Response>).then === 'function';
}
