import path from 'node:path';
import { startDataDir, undoFailedStart } from './data-dir.ts';
import { describeError } from './errors.ts';
import type { Config } from './options.ts';
import { type RunningServer, startServer } from './serve.ts';
import { onStopSignals, signalExitCode } from './signals.ts';

const log = (line: string) => process.stderr.write(`haystack: ${line}\n`);

/**
 * `haystack start`: open, serve, print where, and stop gracefully on the first SIGINT or
 * SIGTERM. The process exits 0 after a clean stop, 1 when it cannot start or stop cleanly.
 */
export async function runStart(config: Config): Promise<void> {
  const dir = path.resolve(config.data);
  const found = await startDataDir(dir);
  if ('problem' in found) {
    log(`cannot start ${dir}: ${found.problem}`);
    process.exitCode = 1;
    return;
  }
  const starting = startServer(config, log);

  let opened: RunningServer | undefined;
  let stopping = false;
  const stop = (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    if (!opened) log(`${reason} while the store opens: stopping once it is open`);
    starting
      .then(
        async (running) => {
          const stopped = running.stop();
          // Logged once the listening socket is closed (stop() does that before it returns), so
          // whoever reads this line knows new connections are refused.
          log(
            `${reason}: no new connections; requests in flight may finish, then the store is synced and closed`,
          );
          const { forced, abandoned } = await stopped;
          if (forced > 0) log(`grace period over: closed ${forced} connection(s) still open`);
          if (abandoned > 0) log(`${abandoned} handler(s) had not finished when the store closed`);
          // Exit once the line is out: stdout is asynchronous on some platforms (macOS pipes).
          process.stdout.write('haystack stopped (data synced)\n', () => process.exit(exitCode));
        },
        () => {}, // it never started: reported below
      )
      .catch((err: unknown) => {
        log(`error while stopping: ${describeError(err)}`);
        process.exit(1);
      });
  };

  // Signals are routed before anything is printed: whoever reads the listening line may send
  // SIGTERM at once, and a signal that came before the handler would kill the process unsynced.
  // One that comes while the store opens stops it as soon as it is open.
  onStopSignals({
    first: (signal) => stop(`${signal} received (send it again to exit at once)`, 0),
    again: (signal) => {
      log(`${signal} received again: exiting now, without waiting for requests or syncing`);
      process.exit(signalExitCode(signal));
    },
  });
  guardProcess(stop);

  try {
    opened = await starting;
  } catch (err) {
    log(`cannot start: ${describeError(err)}`);
    // A start that failed (port in use, bad host) leaves nothing behind.
    await undoFailedStart(dir, found);
    process.exitCode = 1;
    return;
  }
  // Tests and scripts read the actual port from this line; keep its shape.
  if (!stopping) {
    process.stdout.write(`haystack listening on ${opened.url} (data ${opened.dataDir})\n`);
  }
}

/**
 * A failure outside any request must not take the server down without a word. A client that
 * goes away mid-request can surface as a stray ECONNRESET or premature-close error: ignored.
 * Any other unhandled rejection is logged and the server keeps running; an uncaught exception
 * leaves the process in an unknown state, so it is logged and the server stops gracefully with
 * exit status 1.
 */
function guardProcess(stop: (reason: string, exitCode: number) => void): void {
  process.on('unhandledRejection', (reason) => {
    if (isClientGone(reason)) return;
    log(`unhandled rejection (still running): ${describeError(reason)}`);
  });
  process.on('uncaughtException', (err) => {
    if (isClientGone(err)) return;
    log(`uncaught exception: ${describeError(err)}`);
    stop('uncaught exception', 1);
  });
}

const clientGoneCodes = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ABORT_ERR',
]);

function isClientGone(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && clientGoneCodes.has(code);
}
