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
  if (err instanceof UserError) return err.message;
  if (isStoreError(err)) return err.message;
  if (isSystemError(err)) return err.message;
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
