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
 * A log line's fields and message for a failure: the error as the `err` field (the logger's
 * serializer gives a stack only to a bug), and `${what}: ` with one line of what went wrong as
 * the message.
 */
export function errorLog(err: unknown, what: string): [{ err: unknown }, string] {
  const line = isActionable(err)
    ? err.message
    : err instanceof Error
      ? `${err.name}: ${err.message}`
      : String(err);
  return [{ err }, `${what}: ${line.split('\n', 1)[0]}`];
}

/** A failure the user can act on: a `UserError`, a `StoreError`, a system error (EACCES...). */
export function isActionable(err: unknown): err is Error {
  return err instanceof UserError || isStoreError(err) || isSystemError(err);
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
