import { isStoreError, StoreError } from '../../storage/index.ts';
import type { Directory } from './directory/types.ts';

/**
 * The Directory as the cluster store calls it: a failure to reach it (PostgreSQL down, a
 * connection lost, a pool exhausted) becomes `unavailable` (503), as the cluster cannot serve
 * without it; the cause goes with it for the log. Errors that are already the store's pass, and
 * so does whatever the work run under `withKeyLock` throws: that is the caller's, not the
 * Directory's.
 */
export function guardDirectory(directory: Directory): Directory {
  return new Proxy(directory, {
    get(target, property) {
      if (property === 'withKeyLock') return guardedKeyLock(target);
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => Promise.resolve(value.apply(target, args)).catch(unreachable);
    },
  });
}

function guardedKeyLock(directory: Directory): Directory['withKeyLock'] {
  return async (key, work) => {
    let thrownByWork = false;
    try {
      return await directory.withKeyLock(key, () =>
        work().catch((err: unknown) => {
          thrownByWork = true;
          throw err;
        }),
      );
    } catch (err) {
      if (thrownByWork) throw err;
      return unreachable(err);
    }
  };
}

function unreachable(err: unknown): never {
  if (isStoreError(err)) throw err;
  throw new StoreError('unavailable', "the cluster's Directory cannot be reached", { cause: err });
}
