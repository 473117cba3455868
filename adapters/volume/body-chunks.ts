import { StoreError } from '../../storage/index.ts';
import { lockBody } from '../read-body.ts';

/** Chunks of an upload; a failing or aborted client stream becomes `bad_request`. */
export async function* readChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = lockBody(body);
  try {
    for (;;) {
      const result = await reader.read().catch((err: unknown) => {
        if (err instanceof StoreError) throw err; // from a body the store made (a spool file)
        throw new StoreError('bad_request', 'the upload was aborted before its end', {
          cause: err,
        });
      });
      if (result.done) return;
      yield result.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

export function lengthMismatch(declared: number, received: number): StoreError {
  const has = received > declared ? `more than ${declared}` : `${received}`;
  return new StoreError(
    'bad_request',
    `the body has ${has} bytes, but Content-Length said ${declared}`,
  );
}
