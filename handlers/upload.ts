import type { Context } from 'hono';
import type { PutInput } from '../storage/index.ts';
import type { AppEnv, AppSettings } from './env.ts';
import { HttpError } from './errors.ts';
import { countReceived } from './exchange.ts';
import { readSmallBody, tooLarge } from './request-body.ts';
import { parseContentLength, parseContentType } from './schemas.ts';

/** Bodies that declare at most this many bytes (and are within the limit) are read whole here. */
const SMALL_UPLOAD = 256 * 1024;

/**
 * What POST and PUT hand the store. A small body of declared length is read whole; any other
 * goes through as the request's stream: the store enforces `limit` and the declared `length`
 * while the bytes arrive, which is the only place a chunked body's size can be known. A declared
 * length over the limit is refused before a byte is read.
 */
export async function uploadInput(
  c: Context<AppEnv>,
  { maxBody: limit, discardBounds }: Pick<AppSettings, 'maxBody' | 'discardBounds'>,
): Promise<PutInput> {
  const length = parseContentLength(c.req.header('content-length'));
  const contentType = parseContentType(c.req.header('content-type'));
  if (length !== undefined && length > limit) throw tooLarge(limit, length);
  // Only a large or chunked body touches `raw.body`: on @hono/node-server that getter builds a
  // whole web Request (AbortSignal, ReadableStream), which costs more than storing a small file.
  const body =
    length !== undefined && length <= SMALL_UPLOAD
      ? await readSmallBody(c, limit)
      : streamedBody(c, discardBounds);
  return {
    body,
    limit,
    ...(length === undefined ? {} : { length }),
    ...(contentType === undefined ? {} : { contentType }),
  };
}

function streamedBody(
  c: Context<AppEnv>,
  discardBounds: DiscardBounds,
): ReadableStream<Uint8Array> | null {
  let raw: ReadableStream<Uint8Array> | null;
  try {
    raw = c.req.raw.body;
  } catch (err) {
    // On @hono/node-server the first touch of the body builds a web Request from the URL, and
    // that fails for a `Host` the URL parser refuses (`999.1.1.1`): the client's fault, told
    // before anything is stored.
    if (URL.canParse(c.req.url)) throw err;
    throw new HttpError('bad_request', 'the Host header does not name a valid host', {
      cause: err,
    });
  }
  return raw && lingeringBody(raw, discardBounds, (bytes) => countReceived(c, bytes));
}

/** How much of a refused upload is still read and dropped before the connection is let go. */
export interface DiscardBounds {
  /** Bytes read and dropped at most; then the body is cancelled. Default 64 MiB. */
  maxBytes: number;
  /** Milliseconds at most, however few bytes came; then the body is cancelled. Default 5 s. */
  maxMs: number;
}

export const DEFAULT_DISCARD_BOUNDS: DiscardBounds = { maxBytes: 64 * 1024 * 1024, maxMs: 5_000 };

/**
 * The request body as the store sees it, except that when the store stops reading early (413
 * for a chunked body over the limit, a failed write) the rest is read and dropped, within bounds,
 * instead of cancelling the request. On Node a cancel destroys the socket while the client is
 * still sending: its kernel then gets a reset, and the client never reads the answer. Read to its
 * end, the connection even stays usable (keep-alive), as servers such as nginx do ("lingering").
 */
function lingeringBody(
  raw: ReadableStream<Uint8Array>,
  bounds: DiscardBounds,
  /** Told of every chunk read, for the received-bytes metric. */
  received: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  const reader = raw.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else {
          received(value.byteLength);
          controller.enqueue(value);
        }
      },
      cancel() {
        void discardRest(reader, bounds, received);
      },
    },
    { highWaterMark: 0 },
  );
}

async function discardRest(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  { maxBytes, maxMs }: DiscardBounds,
  received: (bytes: number) => void,
): Promise<void> {
  // A timer, not a clock read between chunks: a body that stalls is let go on time too.
  const timer = setTimeout(() => void reader.cancel().catch(() => {}), maxMs);
  let dropped = 0;
  try {
    while (dropped <= maxBytes) {
      const { done, value } = await reader.read();
      if (done) return;
      dropped += value.byteLength;
      received(value.byteLength);
    }
    await reader.cancel().catch(() => {});
  } catch {
    // the client went away: nothing left to drop
  } finally {
    clearTimeout(timer);
  }
}
