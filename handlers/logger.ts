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
}
