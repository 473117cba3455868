import { isStoreError } from '../storage/index.ts';

/** A failure the user can act on; printed as its message alone, without a stack trace. */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/**
 * One line (or a few) for the log: the message of a failure the user can act on (a `StoreError`
 * such as `locked`, a `UserError`, a system error such as EACCES), the stack of anything else, as
 * that is a bug to report.
 */
export function describeError(err: unknown): string {
  if (isActionable(err)) return err.message;
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * A log line's fields and message for a failure: `${what}: ` and one line saying what went wrong
 * as the message, the error as the `err` field. Only a bug's `err` carries the stack (pino's
 * serializer writes it); one the user can act on keeps to its message and code.
 */
export function errorLog(err: unknown, what: string): [{ err: unknown }, string] {
  if (isActionable(err)) {
    const code = (err as { code?: unknown }).code;
    const fields = {
      type: err.name,
      message: err.message,
      ...(code === undefined ? {} : { code }),
    };
    return [{ err: fields }, `${what}: ${err.message}`];
  }
  const line = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return [{ err }, `${what}: ${line.split('\n', 1)[0]}`];
}

function isActionable(err: unknown): err is Error {
  return err instanceof UserError || isStoreError(err) || isSystemError(err);
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
