/**
 * What the app logs to: the shape of pino's logger, so a parent app passes its own (pino's
 * `Logger` is assignable), or anything else with these four methods. Each call takes the
 * record's fields first, then its message, as pino does.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /**
   * Optional: logs the line of a request answered below 500, the record `info(fields,
   * 'request')` would log, but faster. Every request logs one, so the runner's logger writes its
   * fixed shape without a general serializer (wrangler-free-local/logger.ts); a logger without
   * it gets `info`.
   */
  request?(fields: RequestLogFields): void;
  /** Optional (pino has it): when it says `info` is off, request lines are not even built. */
  isLevelEnabled?(level: string): boolean;
}

/** What a request's log line says (handlers/observe.ts), in this order. */
export interface RequestLogFields {
  reqId: string | undefined;
  method: string;
  route: string;
  /** As sent, still percent-encoded, cut at 1024 characters. */
  path: string;
  status: number;
  /** The answer's body, as declared. */
  bytes: number;
  /** The request's body, as read. */
  received: number;
  durationMs: number;
}
