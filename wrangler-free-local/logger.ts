import pino, { type Logger } from 'pino';
import { isColorSupported, prettyFactory } from 'pino-pretty';
import { isActionable } from './errors.ts';
import type { LogLevel } from './option-values.ts';

export type { Logger };

/**
 * How the log is written: one JSON object a line for a program (a pipe, a file, a collector),
 * the same lines made readable for a person at a terminal.
 */
export type LogFormat = 'json' | 'pretty';

/** JSON unless `stream` is a terminal. */
export function logFormatFor(stream: { readonly isTTY?: boolean | undefined }): LogFormat {
  return stream.isTTY === true ? 'pretty' : 'json';
}

export interface LoggerOptions {
  level: LogLevel;
  /** The file descriptor written to; default 1, stdout. */
  destination?: number;
  /** Default: `logFormatFor(process.stdout)`. */
  format?: LogFormat;
}

/**
 * The runner's logger, made once per command and handed to whatever logs (the app, the stores,
 * the stop). Writes are synchronous (SonicBoom `sync`): every line is out when the call returns,
 * so a `process.exit` right after the stopped line, or after a fatal error, loses nothing, and
 * the pretty form is made in this thread, not in a transport worker.
 */
export function createLogger({
  level,
  destination = 1,
  format = logFormatFor(process.stdout),
}: LoggerOptions): Logger {
  const out = pino.destination({ fd: destination, sync: true });
  const options = {
    level,
    // The pid tells members of a local cluster apart; the host name is the collector's to add.
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: serializeError },
  };
  if (format === 'json') return pino(options, out);
  const prettify = prettyFactory({
    // Colour only on the terminal itself, and not against NO_COLOR (colorette's check).
    colorize: destination === 1 && isColorSupported,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid',
    singleLine: true,
  });
  return pino(options, { write: (line: string) => out.write(prettify(line)) });
}

/**
 * The `log` option of the stores (volume, cluster) and the node agent: their lines, which tell of
 * start-up repairs, compactions and replicas, at info, marked with where they come from.
 */
export function componentLog(logger: Logger, component: string): (line: string) => void {
  const child = logger.child({ component });
  return (line) => child.info(line);
}

/**
 * The `err` field: a failure the user can act on (a port in use, a locked directory, a failing
 * disk) as its type, message and code, as `describeError` words it; anything else, a bug, with
 * its stack and causes (pino's serializer).
 */
function serializeError(err: unknown): unknown {
  if (!isActionable(err)) return err instanceof Error ? pino.stdSerializers.err(err) : err;
  const { code } = err as { code?: unknown };
  return { type: err.name, message: err.message, ...(code === undefined ? {} : { code }) };
}
