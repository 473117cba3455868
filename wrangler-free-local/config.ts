import { parseArgs } from 'node:util';
import * as v from 'valibot';
import { BEARER_TOKEN } from '../handlers/admin-routes.ts';

/**
 * The command line and the environment, read once into a typed `Config`. `node:util` parseArgs
 * only splits the words; every value, from a flag or from the environment, is checked by the one
 * valibot schema below, and a flag wins over its variable.
 */

export const MiB = 1024 * 1024;

export const defaults = {
  data: './data',
  port: 8080,
  host: '127.0.0.1',
  maxBody: 64 * MiB,
  fsync: 'always',
  volumeSize: 4 * 1024 * MiB,
  maxConnections: 1024,
  maxPipeline: 16,
  headersTimeout: '20s',
  idleTimeout: '60s',
} as const;

/** Where each option can come from. The keys are the `Config` fields. */
export const optionSources = {
  data: { flag: '--data', env: 'HAYSTACK_DATA' },
  port: { flag: '--port', env: 'HAYSTACK_PORT' },
  host: { flag: '--host', env: 'HAYSTACK_HOST' },
  maxBody: { flag: '--max-body', env: 'HAYSTACK_MAX_BODY' },
  fsync: { flag: '--fsync', env: 'HAYSTACK_FSYNC' },
  volumeSize: { flag: '--volume-size', env: 'HAYSTACK_VOLUME_SIZE' },
  compactAt: { flag: '--compact-at', env: 'HAYSTACK_COMPACT_AT' },
  requireCookie: { flag: '--require-cookie', env: 'HAYSTACK_REQUIRE_COOKIE' },
  readOnly: { flag: '--read-only', env: 'HAYSTACK_READ_ONLY' },
  inlineActive: { flag: '--inline-active', env: 'HAYSTACK_INLINE_ACTIVE' },
  adminToken: { flag: '--admin-token', env: 'HAYSTACK_ADMIN_TOKEN' },
  maxConnections: { flag: '--max-connections', env: 'HAYSTACK_MAX_CONNECTIONS' },
  maxPipeline: { flag: '--max-pipeline', env: 'HAYSTACK_MAX_PIPELINE' },
  headersTimeout: { flag: '--headers-timeout', env: 'HAYSTACK_HEADERS_TIMEOUT' },
  idleTimeout: { flag: '--idle-timeout', env: 'HAYSTACK_IDLE_TIMEOUT' },
} as const;

type OptionName = keyof typeof optionSources;

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

const got = (issue: { input: unknown }) => `got ${JSON.stringify(issue.input)}`;

/** A switch: the flag alone means on; its variable says 1, true, 0 or false. */
const onOff = v.optional(
  v.pipe(
    v.string(),
    v.regex(/^(?:1|0|true|false)$/i, (issue) => `must be 1, true, 0 or false, ${got(issue)}`),
    v.transform((text) => text === '1' || text.toLowerCase() === 'true'),
  ),
  'false',
);

/** Long enough not to be guessed over the network; never echoed back in an error. */
const ADMIN_TOKEN_RULE =
  'must be at least 16 characters of letters, digits and - . _ ~ + / (a bearer token, RFC 6750), such as the output of openssl rand -hex 24';

/** `67108864`, `64M`, `1GiB`: a size in bytes, powers of 1024. */
const byteCount = v.pipe(
  v.string(),
  v.regex(
    SIZE,
    (issue) =>
      `must be a byte count, optionally with a K, M or G suffix (KiB, MiB, GiB), ${got(issue)}`,
  ),
  v.transform(parseSize),
);

/** A whole number from `min` to `max`. */
const count = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^[0-9]{1,7}$/, (issue) => `must be an integer from ${min} to ${max}, ${got(issue)}`),
    v.transform(Number),
    v.minValue(min, (issue) => `must be an integer from ${min} to ${max}, ${got(issue)}`),
    v.maxValue(max, (issue) => `must be an integer from ${min} to ${max}, ${got(issue)}`),
  );

/** `20s`, `500ms`, `1.5` (seconds), in milliseconds; from 100 ms to a day. */
const duration = v.pipe(
  v.string(),
  v.regex(DURATION, (issue) => `must be a duration such as 20s or 500ms, ${got(issue)}`),
  v.transform(parseDuration),
  v.minValue(100, (issue) => `must be at least 100ms, ${got(issue)}`),
  v.maxValue(86_400_000, (issue) => `must be at most a day, ${got(issue)}`),
);

export const configSchema = v.object({
  data: v.optional(v.pipe(v.string(), v.nonEmpty('must name a directory, got ""')), defaults.data),
  port: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[0-9]{1,5}$/, (issue) => `must be an integer from 0 to 65535, ${got(issue)}`),
      v.transform(Number),
      v.maxValue(65535, (issue) => `must be an integer from 0 to 65535, ${got(issue)}`),
    ),
    String(defaults.port),
  ),
  host: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[^\s/]+$/, (issue) => `must be a host name or an IP address, ${got(issue)}`),
    ),
    defaults.host,
  ),
  maxBody: v.optional(
    v.pipe(
      byteCount,
      v.safeInteger((issue) => `is too large, ${got(issue)}`),
    ),
    String(defaults.maxBody),
  ),
  fsync: v.optional(
    v.picklist(['always', 'never'], (issue) => `must be "always" or "never", ${got(issue)}`),
    defaults.fsync,
  ),
  volumeSize: v.optional(
    v.pipe(
      byteCount,
      v.minValue(1024 * 1024, (issue) => `must be at least 1M, ${got(issue)}`),
      v.maxValue(32 * 1024 * MiB, (issue) => `must be at most 32G, ${got(issue)}`),
    ),
    String(defaults.volumeSize),
  ),
  compactAt: v.optional(
    v.pipe(
      v.string(),
      v.regex(
        /^(?:0?\.[0-9]+|1(?:\.0*)?)$/,
        (issue) => `must be a share such as 0.3, ${got(issue)}`,
      ),
      v.transform(Number),
      v.gtValue(0, (issue) => `must be above 0, ${got(issue)}`),
    ),
  ),
  requireCookie: onOff,
  readOnly: onOff,
  inlineActive: onOff,
  adminToken: v.optional(
    v.pipe(v.string(), v.regex(BEARER_TOKEN, ADMIN_TOKEN_RULE), v.minLength(16, ADMIN_TOKEN_RULE)),
  ),
  maxConnections: v.optional(count(1, 1_000_000), String(defaults.maxConnections)),
  maxPipeline: v.optional(count(1, 10_000), String(defaults.maxPipeline)),
  headersTimeout: v.optional(duration, defaults.headersTimeout),
  idleTimeout: v.optional(duration, defaults.idleTimeout),
});

export type Config = v.InferOutput<typeof configSchema>;

export const commands = ['start', 'reload', 'verify', 'compact', 'help'] as const;
export type Command = (typeof commands)[number];

export type CommandLine =
  | { action: 'help' }
  | { action: 'run'; command: Exclude<Command, 'help'>; config: Config }
  | { action: 'usage-error'; message: string };

/**
 * Reads `argv` (without node and the script) and the environment. Never throws: a bad command
 * line comes back as a `usage-error` with a message fit for the user.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CommandLine {
  let parsed: ReturnType<typeof tokenize>;
  try {
    parsed = tokenize(argv);
  } catch (err) {
    return { action: 'usage-error', message: parseArgsMessage(err) };
  }
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (values.help || command === 'help') return { action: 'help' };
  if (command === undefined) return { action: 'usage-error', message: 'no command given' };
  if (
    command !== 'start' &&
    command !== 'reload' &&
    command !== 'verify' &&
    command !== 'compact'
  ) {
    return { action: 'usage-error', message: `unknown command ${JSON.stringify(command)}` };
  }
  if (extra.length > 0) {
    return { action: 'usage-error', message: `unexpected argument ${JSON.stringify(extra[0])}` };
  }

  const flags: Record<OptionName, string | undefined> = {
    data: values.data,
    port: values.port,
    host: values.host,
    maxBody: values['max-body'],
    fsync: values.fsync,
    volumeSize: values['volume-size'],
    compactAt: values['compact-at'],
    requireCookie: values['require-cookie'] ? 'true' : undefined,
    readOnly: values['read-only'] ? 'true' : undefined,
    inlineActive: values['inline-active'] ? 'true' : undefined,
    adminToken: values['admin-token'],
    maxConnections: values['max-connections'],
    maxPipeline: values['max-pipeline'],
    headersTimeout: values['headers-timeout'],
    idleTimeout: values['idle-timeout'],
  };
  const input: Partial<Record<OptionName, string>> = {};
  const from: Partial<Record<OptionName, string>> = {};
  for (const name of Object.keys(optionSources) as OptionName[]) {
    const source = optionSources[name];
    const flag = flags[name];
    // An empty variable counts as unset, as shells make them easily; an empty flag is an error.
    const fromEnv = env[source.env] === '' ? undefined : env[source.env];
    if (flag !== undefined) {
      input[name] = flag;
      from[name] = source.flag;
    } else if (fromEnv !== undefined) {
      input[name] = fromEnv;
      from[name] = `${source.env} (environment)`;
    }
  }

  const result = v.safeParse(configSchema, input);
  if (!result.success) {
    // Name the flag or the variable the bad value came from, rather than the schema's key.
    const issues = result.issues.map((issue) => {
      const key = issue.path?.[0]?.key;
      const origin = typeof key === 'string' ? from[key as OptionName] : undefined;
      return origin ? { ...issue, message: `${origin} ${issue.message}`, path: undefined } : issue;
    }) as typeof result.issues;
    return { action: 'usage-error', message: v.summarize(issues) };
  }
  return { action: 'run', command, config: result.output };
}

function tokenize(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'max-body': { type: 'string' },
      fsync: { type: 'string' },
      'volume-size': { type: 'string' },
      'compact-at': { type: 'string' },
      'require-cookie': { type: 'boolean' },
      'read-only': { type: 'boolean' },
      'inline-active': { type: 'boolean' },
      'admin-token': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-pipeline': { type: 'string' },
      'headers-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** parseArgs messages, without the hint about `--` that does not apply here. */
function parseArgsMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\. To specify a positional argument.*$/s, '');
}
