import type { DrainResult } from './drain.ts';
import { errorLog } from './errors.ts';
import type { Logger } from './logger.ts';
import { onStopSignals, signalExitCode } from './signals.ts';

/** A server that is listening, as `start`, `node` and `gateway` run it. */
export interface Serving {
  /**
   * The log line once it listens: its message (tests and scripts find the port with a regular
   * expression over it; keep its shape) and its fields (`url`, `dataDir`...).
   */
  listening: { line: string; fields: object };
  /**
   * Graceful stop: no new connections (before the promise returns), requests in flight may
   * finish, then whatever it holds is synced and closed.
   */
  stop(): Promise<DrainResult>;
}

export interface RunServerOptions {
  /** Opens and listens; rejects when it cannot (a `UserError` for the user's mistakes). */
  start: () => Promise<Serving>;
  /** Undoes what a failed start left behind. */
  undoFailedStart?: () => Promise<void>;
  /** What the last log line says once stopped. */
  stoppedLine: string;
  logger: Logger;
}

/**
 * Runs a server until the first SIGINT or SIGTERM, then stops it gracefully; a second signal
 * exits at once. The process exits 0 after a clean stop, 1 when it cannot start or stop cleanly.
 */
export async function runServer(options: RunServerOptions): Promise<void> {
  const { logger } = options;
  const starting = options.start();

  let opened: Serving | undefined;
  let stopping = false;
  const stop = (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    if (!opened) logger.info(`${reason} while it starts: stopping once it is up`);
    starting
      .then(
        async (running) => {
          const stopped = running.stop();
          // Logged once the listening socket is closed (stop() does that before it returns), so
          // whoever reads this line knows new connections are refused.
          logger.info(
            `${reason}: no new connections; requests in flight may finish, then everything is synced and closed`,
          );
          const { forced, abandoned } = await stopped;
          if (forced > 0) {
            logger.warn({ forced }, `grace period over: closed ${forced} connection(s) still open`);
          }
          if (abandoned > 0) {
            logger.warn(
              { abandoned },
              `${abandoned} handler(s) had not finished when the store closed`,
            );
          }
          // The logger writes synchronously: the line is out before the exit.
          logger.info({ exitCode }, options.stoppedLine);
          process.exit(exitCode);
        },
        () => {}, // it never started: reported below
      )
      .catch((err: unknown) => {
        logger.error(...errorLog(err, 'error while stopping'));
        process.exit(1);
      });
  };

  // Signals are routed before anything is printed: whoever reads the listening line may send
  // SIGTERM at once, and a signal that came before the handler would kill the process unsynced.
  // One that comes while it starts stops it as soon as it is up.
  onStopSignals({
    first: (signal) => stop(`${signal} received (send it again to exit at once)`, 0),
    again: (signal) => {
      logger.warn(
        { signal },
        `${signal} received again: exiting now, without waiting for requests or syncing`,
      );
      process.exit(signalExitCode(signal));
    },
  });
  guardProcess(stop, logger);

  try {
    opened = await starting;
  } catch (err) {
    logger.error(...errorLog(err, 'cannot start'));
    await options.undoFailedStart?.();
    process.exitCode = 1;
    return;
  }
  if (!stopping) logger.info(opened.listening.fields, opened.listening.line);
}

/**
 * A failure outside any request must not take the server down without a word. A client that
 * goes away mid-request can surface as a stray ECONNRESET or premature-close error: ignored.
 * Any other unhandled rejection is logged and the server keeps running; an uncaught exception
 * leaves the process in an unknown state, so it is logged and the server stops gracefully with
 * exit status 1.
 */
function guardProcess(stop: (reason: string, exitCode: number) => void, logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    if (isClientGone(reason)) return;
    logger.error(...errorLog(reason, 'unhandled rejection (still running)'));
  });
  process.on('uncaughtException', (err) => {
    if (isClientGone(err)) return;
    logger.fatal(...errorLog(err, 'uncaught exception'));
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
