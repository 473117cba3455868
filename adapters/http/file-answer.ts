import { DEFAULT_CONTENT_TYPE } from '../../storage/index.ts';
import type { ParsedRef } from './file-ref.ts';
import { clip, HaystackError } from './haystack-error.ts';

/** A stored file as a read's headers describe it (GET or HEAD). */
export interface RemoteFile {
  key: number;
  /** From the request's file id, or the server's ETag (`"{key}-{cookie}"`); undefined if neither. */
  cookie: number | undefined;
  /** Length of the whole file in bytes (also for a range read). */
  size: number;
  contentType: string;
  /** Strong entity tag, quoted as the server sent it. */
  etag: string;
}

/** Inclusive byte range, as `Content-Range` states it. */
export interface ByteSpan {
  start: number;
  end: number;
}

/** The ETag this project's stores write: `"{key}-{cookie as 8 hex digits}"`. */
const STORE_ETAG = /^"([1-9][0-9]{0,15})-([0-9a-f]{8})"$/;
const CONTENT_RANGE = /^bytes ([0-9]{1,16})-([0-9]{1,16})\/([0-9]{1,16})$/;
const DECIMAL = /^[0-9]{1,16}$/;
/** Longest header value taken from an answer: a hostile server cannot make info objects huge. */
const MAX_HEADER = 4096;

/**
 * The file a 200 or 206 answer (or a HEAD's 200) describes. Every header the API always sends
 * must be there and well formed; otherwise the answer is `bad_response`, as it did not come from
 * a Haystack server (or was changed on the way).
 */
export function fileOfAnswer(
  res: Response,
  ref: ParsedRef,
  what: string,
): { file: RemoteFile; span: ByteSpan | undefined; length: number } {
  const etag = header(res, 'etag', what);
  const contentType = res.headers.get('content-type') ?? DEFAULT_CONTENT_TYPE;
  if (contentType.length > MAX_HEADER) throw malformed(res, what, 'Content-Type is too long');
  const length = decimalHeader(res, 'content-length', what);
  let size = length;
  let span: ByteSpan | undefined;
  if (res.status === 206) {
    const range = CONTENT_RANGE.exec(header(res, 'content-range', what));
    const [start, end, total] = [Number(range?.[1]), Number(range?.[2]), Number(range?.[3])];
    if (!range || start > end || end >= total || end - start + 1 !== length) {
      throw malformed(res, what, `Content-Range does not match its ${length} bytes`);
    }
    span = { start, end };
    size = total;
  }
  const tagged = STORE_ETAG.exec(etag);
  const cookie =
    ref.cookie ??
    (tagged && Number(tagged[1]) === ref.key ? Number.parseInt(tagged[2] ?? '', 16) : undefined);
  return { file: { key: ref.key, cookie, size, contentType, etag }, span, length };
}

function header(res: Response, name: string, what: string): string {
  const value = res.headers.get(name);
  if (value === null) throw malformed(res, what, `no ${name} header`);
  if (value.length > MAX_HEADER) throw malformed(res, what, `the ${name} header is too long`);
  return value;
}

function decimalHeader(res: Response, name: string, what: string): number {
  const value = header(res, name, what);
  if (!DECIMAL.test(value)) throw malformed(res, what, `${name} is not a length`);
  return Number(value);
}

function malformed(res: Response, what: string, problem: string): HaystackError {
  void res.body?.cancel().catch(() => {});
  return new HaystackError(
    res.status,
    'bad_response',
    `${what} answered ${res.status}: ${clip(problem, 200)}`,
  );
}

/**
 * The answer's body, checked as it streams: exactly `length` bytes, or the stream errors with a
 * `HaystackError` (`bad_response`), so a body cut short (the server died, a proxy gave up) is
 * never taken for the whole file. Cancelling it cancels the answer.
 */
export function checkedBody(
  body: ReadableStream<Uint8Array> | null,
  length: number,
  status: number,
  what: string,
): ReadableStream<Uint8Array> {
  if (!body) return new ReadableStream({ start: (controller) => controller.close() });
  const reader = body.getReader();
  let received = 0;
  const cut = (detail: string, cause?: unknown) =>
    new HaystackError(
      status,
      'bad_response',
      `${what}: the body ended after ${received} of ${length} bytes (${detail})`,
      cause === undefined ? undefined : { cause },
    );
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: Awaited<ReturnType<typeof reader.read>>;
        try {
          next = await reader.read();
        } catch (err) {
          controller.error(cut(err instanceof Error ? err.message : 'the stream failed', err));
          return;
        }
        if (next.done) {
          if (received === length) controller.close();
          else controller.error(cut('the answer ended'));
          return;
        }
        received += next.value.byteLength;
        if (received > length) {
          await reader.cancel().catch(() => {});
          controller.error(
            new HaystackError(
              status,
              'bad_response',
              `${what}: the body is longer than its ${length} bytes`,
            ),
          );
          return;
        }
        controller.enqueue(next.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
