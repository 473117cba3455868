import * as v from 'valibot';

/**
 * The kinds of value an option takes, as valibot schemas from the text of a flag or a variable
 * to the typed value. Messages complete "<flag or variable> ...", and echo what they got.
 */

export const MiB = 1024 * 1024;

const SIZE = /^([0-9]{1,16})(?:([KMG])(?:iB)?)?$/i;
const UNIT: Readonly<Record<string, number>> = { K: 1024, M: MiB, G: 1024 * MiB };

/** `67108864`, `65536K`, `64M`, `64MiB`, `1G`: bytes, or powers of 1024. */
export function parseSize(text: string): number {
  const match = SIZE.exec(text);
  if (!match) return Number.NaN;
  const [, digits = '', unit = ''] = match;
  return Number(digits) * (UNIT[unit.toUpperCase()] ?? 1);
}

const DURATION = /^([0-9]{1,7}(?:\.[0-9]{1,3})?)(ms|s)?$/;

/** `20`, `20s`, `1.5s`, `500ms`: a duration in milliseconds; a bare number is seconds. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text);
  if (!match) return Number.NaN;
  const [, amount = '', unit = 's'] = match;
  return Math.round(Number(amount) * (unit === 'ms' ? 1 : 1000));
}

export const got = (issue: { input: unknown }) => `got ${JSON.stringify(issue.input)}`;

/** A switch: the flag alone means on; its variable says 1, true, 0 or false. */
export const onOff = v.pipe(
  v.string(),
  v.regex(/^(?:1|0|true|false)$/i, (issue) => `must be 1, true, 0 or false, ${got(issue)}`),
  v.transform((text) => text === '1' || text.toLowerCase() === 'true'),
);

/**
 * A check of the number `parse` makes of the text, made on the text so that the message echoes
 * it as given ("got \"1K\"", not the 1024 it stands for).
 */
const checkValue = (
  parse: (text: string) => number,
  ok: (value: number) => boolean,
  message: string,
) =>
  v.check(
    (text: string) => ok(parse(text)),
    (issue) => `${message}, ${got(issue)}`,
  );

interface Bound {
  bytes: number;
  message: string;
}

/** `67108864`, `64M`, `1GiB`: a size in bytes, powers of 1024, within the bounds given. */
export const byteCount = ({
  min,
  max = { bytes: Number.MAX_SAFE_INTEGER, message: 'is too large' },
}: {
  min?: Bound;
  max?: Bound;
} = {}) =>
  v.pipe(
    v.string(),
    v.regex(
      SIZE,
      (issue) =>
        `must be a byte count, optionally with a K, M or G suffix (KiB, MiB, GiB), ${got(issue)}`,
    ),
    checkValue(parseSize, (n) => min === undefined || n >= min.bytes, min?.message ?? ''),
    checkValue(parseSize, (n) => n <= max.bytes, max.message),
    v.transform(parseSize),
  );

/** A whole number from `min` to `max`. */
export const count = (min: number, max: number) => {
  const message = `must be an integer from ${min} to ${max}`;
  return v.pipe(
    v.string(),
    v.regex(/^[0-9]{1,7}$/, (issue) => `${message}, ${got(issue)}`),
    checkValue(Number, (n) => n >= min && n <= max, message),
    v.transform(Number),
  );
};

/** `20s`, `500ms`, `1.5` (seconds), in milliseconds; from 100 ms to a day. */
export const duration = v.pipe(
  v.string(),
  v.regex(DURATION, (issue) => `must be a duration such as 20s or 500ms, ${got(issue)}`),
  checkValue(parseDuration, (ms) => ms >= 100, 'must be at least 100ms'),
  checkValue(parseDuration, (ms) => ms <= 86_400_000, 'must be at most a day'),
  v.transform(parseDuration),
);

/** `0.3`, `.5`, `1`: a share above 0, at most 1. */
export const share = v.pipe(
  v.string(),
  v.regex(
    /^(?:0?\.[0-9]+|1(?:\.0*)?)$/,
    (issue) => `must be a share above 0 and at most 1, such as 0.3, ${got(issue)}`,
  ),
  // 0.0 passes the pattern: its own message, still with the range.
  checkValue(Number, (n) => n > 0, 'must be above 0 and at most 1'),
  v.transform(Number),
);

/** pino's levels, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

export const logLevel = v.picklist(
  LOG_LEVELS,
  (issue) => `must be one of ${LOG_LEVELS.join(', ')}, ${got(issue)}`,
);
