import { execFile } from 'node:child_process';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Env } from './cli.ts';

/**
 * A failing disk for a real child process: `faulty-io/faulty-io.c`, an LD_PRELOAD shim that makes
 * writes and flushes of chosen files fail with EIO while a trigger file exists (see the comment at
 * its top). Linux only: it relies on LD_PRELOAD and /proc/self/fd.
 */
const source = fileURLToPath(new URL('./faulty-io/faulty-io.c', import.meta.url));
const run = promisify(execFile);

/**
 * Compiles the shim into `dir`; returns the library's path, or undefined where it cannot be used:
 * not Linux, or no C compiler. A compiler that is there but fails is an error, not a skip.
 */
export async function buildFaultyIo(dir: string): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  const library = path.join(dir, 'faulty-io.so');
  try {
    await run('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', library, source, '-ldl']);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return library;
}

/** Which calls fail while armed: writes, flushes (fsync, fdatasync), or both. */
export type FaultyCalls = 'write' | 'sync' | 'all';

export interface FaultyDisk {
  /** The environment a child needs to run on this disk (merge it into the child's). */
  readonly env: Env;
  /** From now on the chosen calls on matching files fail with EIO, in the running child too. */
  arm(calls: FaultyCalls): Promise<void>;
  /** The disk works again. */
  disarm(): Promise<void>;
}

/**
 * A disk whose files ending in one of `suffixes` can be made to fail. `triggerDir` holds the
 * trigger file; it must not be the data directory.
 */
export function faultyDisk(
  library: string,
  triggerDir: string,
  suffixes: readonly string[] = ['.dat'],
): FaultyDisk {
  const trigger = path.join(triggerDir, 'fail');
  return {
    env: {
      LD_PRELOAD: library,
      FAULTY_IO_TRIGGER: trigger,
      FAULTY_IO_SUFFIX: suffixes.join(','),
      // libuv could submit file I/O through io_uring, past libc; the shim also refuses io_uring.
      UV_USE_IO_URING: '0',
    },
    async arm(calls) {
      // Whole or not at all: the child reads the trigger on every call, and an empty one (the
      // moment between creating and writing it) would fail every call.
      await writeFile(`${trigger}.tmp`, calls === 'all' ? '' : calls);
      await rename(`${trigger}.tmp`, trigger);
    },
    disarm: () => rm(trigger, { force: true }),
  };
}
