import { writeSync } from 'node:fs';

/**
 * Request lines are written once this many characters wait (about 70 lines): a write to a file
 * costs about the same for 4 and for 16 KiB, so per line 0.24-0.33 us at 4 KiB, 0.14-0.21 at 16...
 */
export const BATCH_CHARS = 16 * 1024;
/** ...or at most this long after they were logged. */
export const BATCH_MS = 100;

/**
 * Where the runner's JSON log goes (a file descriptor, stdout by default). Every request logs a
 * line, and a `write` per line is a system call per request, a good part of what a 1 KiB read
 * costs when stdout is a file (docs/PERFORMANCE.md): so request lines are batched (`batched`),
 * written together about 16 KiB at a time, at the latest 100 ms later. Every other line
 * (start-up, stop, errors, every 5xx, store and compaction lines) goes out at once, after the
 * batch before it so that the order holds. On exit, however it comes (`process.exit`, the end
 * of the event loop, a fatal exception), what waits is written; a `kill -9` loses at most the
 * last 100 ms of request lines, never a line of any other kind.
 *
 * Not SonicBoom's `minLength`: it measures its whole buffer at every write, and so costs more
 * per line (about 2 us here) than a `write` per line does (1.5 us); this costs 0.2-0.4 with the
 * line's making.
 */
export interface LogDestination {
  /** A request line: written within BATCH_CHARS or BATCH_MS. */
  batched(line: string): void;
  /** Any other line: written before this returns, with the batch before it. */
  write(line: string): void;
  /** Writes what waits. */
  flush(): void;
}

/** Every destination made, for the exit hook. */
const made = new Set<LogDestination>();

function flushAllOnExit(): void {
  for (const destination of made) destination.flush();
}

/** How long to wait when a pipe is full (EAGAIN), as SonicBoom does. */
const BUSY_WAIT_MS = 10;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `text`, synchronously: the log keeps its order and a full pipe holds the writer
 * back rather than growing memory. A log that cannot be written at all (a reader gone from the
 * pipe, a full disk) has no one to tell: its lines are dropped and the server goes on.
 */
function writeAll(fd: number, text: string): void {
  let bytes: Buffer | undefined;
  let offset = 0;
  for (;;) {
    try {
      if (bytes === undefined) {
        const written = writeSync(fd, text);
        if (written === Buffer.byteLength(text)) return;
        bytes = Buffer.from(text);
        offset = written;
      } else {
        offset += writeSync(fd, bytes, offset);
      }
      if (offset >= bytes.length) return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      Atomics.wait(sleeper, 0, 0, BUSY_WAIT_MS);
    }
  }
}

export function logDestination(fd: number): LogDestination {
  let pending = '';
  const flush = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    writeAll(fd, text);
  };
  // Unref'd: it keeps no process alive; the exit hook writes what is left.
  setInterval(flush, BATCH_MS).unref();
  const destination: LogDestination = {
    batched: (line) => {
      pending += line;
      if (pending.length >= BATCH_CHARS) flush();
    },
    write: (line) => {
      pending += line;
      flush();
    },
    flush,
  };
  if (made.size === 0) process.once('exit', flushAllOnExit);
  made.add(destination);
  return destination;
}
