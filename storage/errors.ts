/**
 * Every failure the store reports carries a stable `code`. Handlers map codes to HTTP statuses in
 * one place; callers (and tests) match on the code, never on the message.
 */
export const storeErrorCodes = [
  'bad_key', // the key is not a decimal integer from 1 to 2^53-1
  'not_found', // no live file under that key (never stored, deleted or replaced)
  'too_large', // the body is over the limit; nothing was stored
  'bad_request', // the body does not match what was declared (length), or the upload was aborted
  'corrupt', // stored bytes fail their checksum; never answered with wrong bytes
  'no_space', // the disk (or the volume's addressable space) is full; nothing was stored
  'io_error', // the disk failed in another way; nothing acknowledged is affected
  'locked', // another live process owns the data directory
  'read_only', // the store or the volume does not take writes
  'closed', // the store was closed
  'conflict', // a replica write names a key that holds other content
  'unavailable', // a cluster cannot serve it now: too few nodes up, or no replica reachable
] as const;

export type StoreErrorCode = (typeof storeErrorCodes)[number];

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}
