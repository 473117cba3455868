import { type Key, StoreError } from '../../storage/index.ts';
import type { NeedleLocation } from './needle-map.ts';

/** The store's errors, named once: what each failure is called and says. */

export function diskError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') {
    return new StoreError('no_space', 'the disk is full; nothing was stored', { cause: err });
  }
  // Not "nothing was stored": a write whose flush failed may still be found after a restart.
  return new StoreError(
    'io_error',
    `the disk failed (${code ?? 'unknown error'}); the request was not completed`,
    { cause: err },
  );
}

export function corrupt(key: Key, location: NeedleLocation, problem: string): StoreError {
  const what = key > 0 ? `file ${key}` : 'the file';
  return new StoreError(
    'corrupt',
    `${what} is damaged on disk (volume ${location.volume}, offset ${location.offset}: ${problem})`,
  );
}

export function notFound(key: Key): StoreError {
  return new StoreError('not_found', `no file with key ${key}`);
}

export function noVolume(id: number): StoreError {
  return new StoreError('not_found', `no volume ${id}`);
}

export function closed(): StoreError {
  return new StoreError('closed', 'the store is closed');
}

export function readOnlyServer(): StoreError {
  return new StoreError('read_only', 'this server is read-only');
}
