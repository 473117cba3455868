import pino, { type Logger as PinoLogger } from 'pino';
import { isColorSupported, prettyFactory } from 'pino-pretty';
import type { RequestLogFields } from '../handlers/logger.ts';
import { isActionable } from './errors.ts';
import { type LogDestination, logDestination } from './log-destination.ts';
import type { LogLevel } from './option-values.ts';

/**
 * pino's logger, with the request line's fast path (`request`) when it writes JSON; a child
 * has it too, through its prototype.
 */
export type Logger = PinoLogger & { request?(fields: RequestLogFields): void };

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
 * the stop). Writes are synchronous: a line other than a request's is out when the call
 * returns, so a `process.exit` right after the stopped line, or after a fatal error, loses
 * nothing, and the pretty form is made in this thread, not in a transport worker. Request lines
 * in JSON are batched (log-destination.ts); `logger.flush()` writes them at once.
 */
export function createLogger({
  level,
  destination = 1,
  format = logFormatFor(process.stdout),
}: LoggerOptions): Logger {
  const options = {
    level,
    // The pid tells members of a local cluster apart; the host name is the collector's to add.
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: serializeError },
  };
  if (format === 'json') {
    const out = logDestination(destination);
    const stream = {
      write: out.write,
      // pino's `logger.flush(callback)`.
      flush: (done?: (err?: Error) => void) => {
        out.flush();
        done?.();
      },
    };
    return withRequestLines(pino(options, stream), out);
  }
  // On a terminal a person reads as it happens: every line at once.
  const out = pino.destination({ fd: destination, sync: true });
  const prettify = prettyFactory({
    // Colour only on the terminal itself, and not against NO_COLOR (colorette's check).
    colorize: destination === 1 && isColorSupported,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid',
    singleLine: true,
  });
  return pino(options, { write: (line: string) => out.write(prettify(line)) });
}

/** pino's pre-serialized bindings of a logger (`,"pid":1,"role":"node"`), what it writes. */
const BINDINGS = pino.symbols.chindingsSym;
const INFO = 30;

/**
 * The request line (handlers/logger.ts `request`), written as pino would write
 * `info(fields, 'request')` with these options (isoTime, the logger's bindings), to the same
 * destination so lines stay in order. Every request logs one: pino's general serializer costs
 * 4-8 us a line on a 2-core machine, this about 1 (docs/PERFORMANCE.md). A method, so a child
 * (`role`) writes its own bindings.
 */
function withRequestLines(logger: Logger, out: LogDestination): Logger {
  // The time as ISO text, made once per millisecond: making it costs a request about 1 us here,
  // and requests come many to a millisecond under load.
  let isoMs = -1;
  let iso = '';
  function request(this: Logger, fields: RequestLogFields): void {
    if (this.levelVal > INFO) return;
    const now = Date.now();
    if (now !== isoMs) {
      isoMs = now;
      iso = new Date(now).toISOString();
    }
    const { reqId, method, route, path, status, bytes, received, durationMs } = fields;
    const id = reqId === undefined ? '' : `,"reqId":${JSON.stringify(reqId)}`;
    const bindings = (this as unknown as Record<symbol, string>)[BINDINGS] ?? '';
    out.batched(
      `{"level":${INFO},"time":"${iso}"${bindings}${id},"method":${JSON.stringify(method)},"route":${JSON.stringify(route)},"path":${JSON.stringify(path)},"status":${status},"bytes":${bytes},"received":${received},"durationMs":${durationMs},"msg":"request"}\n`,
    );
  }
  return Object.assign(logger, { request });
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
