import type { StoreErrorCode } from '../../storage/index.ts';
import { boundedText } from './bounded-text.ts';

/** Codes only the HTTP API answers with (handlers/errors.ts), beside the store's. */
export type HttpOnlyErrorCode =
  | 'no_route'
  | 'method_not_allowed'
  | 'range_not_satisfiable'
  | 'unauthorized'
  | 'not_supported'
  | 'internal';

/**
 * Codes the client gives when the server's JSON error is not there to say:
 * - `bad_response`: an answer that is not what the API sends (an error without the JSON error
 *   body, as a proxy's 502 page; a success answer with missing or malformed fields; a body cut
 *   short). `status` is the answer's.
 * - `network_error`: no answer at all (refused, reset, DNS); `status` is 0.
 */
export type ClientErrorCode = 'bad_response' | 'network_error';

export type HaystackErrorCode =
  | StoreErrorCode
  | HttpOnlyErrorCode
  | ClientErrorCode
  // A newer server may answer codes this client does not know yet: they come through as sent.
  | (string & {});

/**
 * What every failed call of the client rejects with: the JSON error's `code` and `message`, and
 * the HTTP status. Status 0: no answer came (`network_error`), or the client refused the call
 * before sending, with the code the server would have answered: `bad_key` for an id that cannot
 * be a file id, `bad_request` for a declared length the body contradicts or a header value that
 * cannot be sent.
 */
export class HaystackError extends Error {
  override readonly name = 'HaystackError';
  readonly status: number;
  readonly code: HaystackErrorCode;

  constructor(status: number, code: HaystackErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.code = code;
  }
}

/** Bytes of an error answer read at most: a hostile or broken server cannot make the client hoard. */
const MAX_ERROR_BODY = 64 * 1024;
/** Characters of a server's message kept: enough for any message the API writes. */
const MAX_MESSAGE = 2048;

/**
 * The error a non-2xx answer stands for: the JSON error body's code and message when it has one,
 * otherwise `bad_response` with the status. At most MAX_ERROR_BODY bytes of it are read.
 */
export async function errorOfAnswer(res: Response, what: string): Promise<HaystackError> {
  const text = await boundedText(res, MAX_ERROR_BODY);
  const body = parseErrorBody(text);
  if (body) return new HaystackError(res.status, body.code, body.message);
  return new HaystackError(
    res.status,
    'bad_response',
    `${what} answered ${res.status} ${clip(res.statusText, 100)} without the JSON error body`.trim(),
  );
}

/**
 * What a HEAD's error answer stands for. HEAD answers carry no body, so the code is the one the
 * API answers this status with on the file routes (handlers/errors.ts).
 */
export function errorOfHeadAnswer(res: Response, what: string): HaystackError {
  const code = codeByHeadStatus[res.status] ?? 'bad_response';
  void res.body?.cancel().catch(() => {});
  return new HaystackError(res.status, code, `${what} answered ${res.status}`);
}

const codeByHeadStatus: Readonly<Record<number, HaystackErrorCode>> = {
  400: 'bad_key',
  401: 'unauthorized',
  403: 'read_only',
  404: 'not_found',
  405: 'method_not_allowed',
  500: 'internal',
  501: 'not_supported',
  503: 'unavailable',
};

/** A failure of `fetch` itself (no answer): `network_error`, the cause kept. */
export function networkError(err: unknown, what: string): HaystackError {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new HaystackError(0, 'network_error', `${what} failed: ${clip(reason, 300)}`, {
    cause: err,
  });
}

function parseErrorBody(text: string | undefined): { code: string; message: string } | undefined {
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const error = isRecord(json) ? json.error : undefined;
  if (!isRecord(error) || typeof error.code !== 'string' || typeof error.message !== 'string') {
    return undefined;
  }
  // The code is matched on by callers: only a code-shaped string is taken as one.
  if (!/^[a-z_]{1,64}$/.test(error.code)) return undefined;
  return { code: error.code, message: clip(error.message, MAX_MESSAGE) };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
