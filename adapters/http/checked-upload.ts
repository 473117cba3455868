import { type BodySource, type PutInput, StoreError } from '../../storage/index.ts';

/** An upload's body as sent, and why it was refused while it streamed, if it was. */
export interface CheckedUpload {
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  /** Set once the stream broke the port's rules (or failed); the request then failed for it. */
  refusal(): StoreError | undefined;
}

/**
 * The port's `limit` and `length` rules, kept on this side: the server knows its own `maxBody`
 * only, and an upload refused here never reaches it whole. Bytes in memory are judged before
 * anything is sent; a stream is counted as it is sent, and errored (so fetch aborts the request
 * and the server stores nothing) at the first byte past the limit or the declared length, or
 * at an end short of that length.
 */
export function checkedUpload({ body, length, limit }: PutInput): CheckedUpload {
  if (length !== undefined && limit !== undefined && length > limit) {
    throw tooLarge(limit, `declares ${length} bytes`);
  }
  if (!(body instanceof ReadableStream)) {
    const size = body?.byteLength ?? 0;
    if (limit !== undefined && size > limit) throw tooLarge(limit, `has ${size} bytes`);
    if (length !== undefined && size !== length) throw lengthMismatch(length, size);
    return { body, refusal: () => undefined };
  }
  return countedStream(body, length, limit);
}

function countedStream(
  source: ReadableStream<Uint8Array>,
  length: number | undefined,
  limit: number | undefined,
): CheckedUpload {
  const reader = source.getReader();
  let refusal: StoreError | undefined;
  let sent = 0;
  const body: BodySource = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const refuse = (err: StoreError) => {
          refusal = err;
          controller.error(err);
          void reader.cancel(err).catch(() => {});
        };
        let next: Awaited<ReturnType<typeof reader.read>>;
        try {
          next = await reader.read();
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          refuse(new StoreError('bad_request', `the upload failed: ${reason}`, { cause: err }));
          return;
        }
        if (next.done) {
          if (length !== undefined && sent !== length) refuse(lengthMismatch(length, sent));
          else controller.close();
          return;
        }
        sent += next.value.byteLength;
        if (limit !== undefined && sent > limit) return refuse(tooLarge(limit, 'is longer'));
        if (length !== undefined && sent > length) return refuse(lengthMismatch(length, sent));
        controller.enqueue(next.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return { body, refusal: () => refusal };
}

function tooLarge(limit: number, detail: string): StoreError {
  return new StoreError('too_large', `the body ${detail}; at most ${limit} are accepted`);
}

function lengthMismatch(declared: number, actual: number): StoreError {
  const how = actual > declared ? `more than` : `only ${actual} of`;
  return new StoreError('bad_request', `the body has ${how} the ${declared} bytes it declared`);
}
