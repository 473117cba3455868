import { StoreError, type StoreErrorCode, storeErrorCodes } from '../../storage/index.ts';
import { HaystackError } from './haystack-error.ts';

const STORE_CODES: ReadonlySet<string> = new Set(storeErrorCodes);

/** Statuses a proxy or load balancer answers when the server behind it cannot be reached. */
const GATEWAY_STATUSES = new Set([502, 503, 504]);

/**
 * The port's error for a failed call of the client. A code the store has comes back as that code
 * (the server's `not_found` is the remote store's `not_found`); no answer, or a gateway's page
 * instead of one, is `unavailable` (the remote store cannot serve now); anything else the server
 * should not have answered (an unknown route, a bad answer, a 500 `internal`) is `io_error`.
 */
export function storeErrorOf(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  if (!(err instanceof HaystackError)) {
    const reason = err instanceof Error ? err.message : String(err);
    return new StoreError('io_error', `the remote store failed: ${reason}`, { cause: err });
  }
  const code: StoreErrorCode = STORE_CODES.has(err.code)
    ? (err.code as StoreErrorCode)
    : err.code === 'network_error' ||
        (err.code === 'bad_response' && GATEWAY_STATUSES.has(err.status))
      ? 'unavailable'
      : 'io_error';
  return new StoreError(code, err.message, { cause: err });
}
