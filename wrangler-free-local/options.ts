import * as v from 'valibot';
import { BEARER_TOKEN } from '../handlers/admin-routes.ts';
import { byteCount, count, duration, got, logLevel, MiB, onOff, share } from './option-values.ts';

/**
 * Every option of the command line, once: its flag, its environment variable, its default, its
 * help and the valibot schema that checks its text, whether from the flag or from the variable.
 * parseArgs's options, the config schema and the usage text are all made from this table; the
 * README's flag table is checked against it by test/e2e/cli-table.test.ts.
 */

interface Common {
  flag: `--${string}`;
  env: `HAYSTACK_${string}`;
  /** Paragraphs, separated by '\n'; the usage wraps them. */
  help: string;
  /** A token, or a URL that may hold a password: a log says only whether it is set. */
  secret?: true;
}

export interface ValueOption extends Common {
  type: 'string';
  /** The value's name in the usage and the README: `--data DIR`. */
  value: string;
  /** As it would be typed; none means off. */
  default?: string;
  schema: v.GenericSchema<string, unknown>;
}

/** A switch: the flag alone turns it on; it is off unless given. */
export interface SwitchOption extends Common {
  type: 'boolean';
  schema: v.GenericSchema<string, boolean>;
}

export type OptionSpec = ValueOption | SwitchOption;

/** Long enough not to be guessed over the network; never echoed back in an error. */
const ADMIN_TOKEN_RULE =
  'must be at least 16 characters of letters, digits and - . _ ~ + / (a bearer token, RFC 6750), such as the output of openssl rand -hex 24';

const CLUSTER_TOKEN_RULE = ADMIN_TOKEN_RULE;

/** A PostgreSQL URL; never echoed back, as it may carry a password. */
const directoryUrl = v.pipe(
  v.string(),
  v.check(
    (text) => /^postgres(?:ql)?:$/.test(parsedUrl(text)?.protocol ?? ''),
    'must be a PostgreSQL URL such as postgres://user:password@host:5432/db',
  ),
);

/** An http(s) base URL: scheme, host and port, no path; a trailing slash is dropped. */
const baseUrl = v.pipe(
  v.string(),
  v.check(
    (text) => {
      const url = parsedUrl(text);
      return (
        url !== undefined &&
        (url.protocol === 'http:' || url.protocol === 'https:') &&
        url.pathname === '/' &&
        url.search === '' &&
        url.hash === '' &&
        url.username === '' &&
        url.password === ''
      );
    },
    (issue) => `must be a base URL such as http://10.0.0.5:8080, ${got(issue)}`,
  ),
  v.transform((text) => text.replace(/\/$/, '')),
);

function parsedUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** In the order the usage lists them. The keys are the `Config` fields. */
export const options = {
  data: {
    flag: '--data',
    env: 'HAYSTACK_DATA',
    type: 'string',
    value: 'DIR',
    default: './data',
    help: 'Data directory; start creates it if missing, the other commands need it to exist.',
    schema: v.pipe(v.string(), v.nonEmpty('must name a directory, got ""')),
  },
  port: {
    flag: '--port',
    env: 'HAYSTACK_PORT',
    type: 'string',
    value: 'N',
    default: '8080',
    help: 'TCP port to listen on; 0 picks a free one (the listening line prints it).',
    schema: count(0, 65535),
  },
  host: {
    flag: '--host',
    env: 'HAYSTACK_HOST',
    type: 'string',
    value: 'H',
    default: '127.0.0.1',
    help: 'Address to listen on; 0.0.0.0 or :: for every interface.',
    schema: v.pipe(
      v.string(),
      v.regex(/^[^\s/]+$/, (issue) => `must be a host name or an IP address, ${got(issue)}`),
    ),
  },
  maxBody: {
    flag: '--max-body',
    env: 'HAYSTACK_MAX_BODY',
    type: 'string',
    value: 'BYTES',
    default: '64M',
    help:
      'Largest file accepted by POST and PUT; a larger one gets 413 and nothing is stored. ' +
      'Bytes, or with a K, M or G suffix for KiB, MiB, GiB (powers of 1024): 1000, 512K, 64M, 1GiB.',
    schema: byteCount(),
  },
  fsync: {
    flag: '--fsync',
    env: 'HAYSTACK_FSYNC',
    type: 'string',
    value: 'MODE',
    default: 'always',
    help:
      'always: a write is answered only once it is on disk (fdatasync); concurrent writes share ' +
      'one flush. Acknowledged writes survive a crash of the server or of the machine.\n' +
      'never: faster; flushing is left to the operating system, to DELETE /sync and to stopping ' +
      'the server.\n' +
      // A paragraph of its own, so that the warning stays on one line.
      'It CAN LOSE WRITES THAT WERE ALREADY ACKNOWLEDGED when the machine crashes or loses power.',
    schema: v.picklist(
      ['always', 'never'],
      (issue) => `must be "always" or "never", ${got(issue)}`,
    ),
  },
  volumeSize: {
    flag: '--volume-size',
    env: 'HAYSTACK_VOLUME_SIZE',
    type: 'string',
    value: 'BYTES',
    default: '4G',
    help:
      'Size at which a new volume file is started (1.dat, 2.dat, ...); suffixes as --max-body. ' +
      'From 1M to 32G.',
    schema: byteCount({
      min: { bytes: MiB, message: 'must be at least 1M' },
      max: { bytes: 32 * 1024 * MiB, message: 'must be at most 32G' },
    }),
  },
  compactAt: {
    flag: '--compact-at',
    env: 'HAYSTACK_COMPACT_AT',
    type: 'string',
    value: 'R',
    help:
      'Compact a full volume in the background once this share of its bytes is deleted or ' +
      'replaced files: above 0, at most 1 (0.3: 30%). Off: POST /admin/compact, or the compact ' +
      'command.',
    schema: share,
  },
  cacheSize: {
    flag: '--cache-size',
    env: 'HAYSTACK_CACHE_SIZE',
    type: 'string',
    value: 'BYTES',
    default: '0',
    help:
      'Memory for the cache of small files (up to 64 KiB), filled on write and on read: a hit is ' +
      'answered without reading the disk or checking a checksum (the bytes were checked when ' +
      'cached). Suffixes as --max-body, e.g. 64M. Default 0: off, as it measured slower over ' +
      'HTTP so far (docs/PERFORMANCE.md).',
    schema: byteCount(),
  },
  requireCookie: {
    flag: '--require-cookie',
    env: 'HAYSTACK_REQUIRE_COOKIE',
    type: 'boolean',
    help:
      'Only /file/{key},{cookie} names a file: a bare /file/{key} answers 404, as a missing file ' +
      'would. Uploads answer the id as "fid" and in Location. Recommended wherever strangers can ' +
      'reach the server: keys are easy to guess, cookies are not.',
    schema: onOff,
  },
  readOnly: {
    flag: '--read-only',
    env: 'HAYSTACK_READ_ONLY',
    type: 'boolean',
    help:
      'Serve reads only: POST, PUT and DELETE answer 403 read_only. The server still owns the ' +
      'data directory.',
    schema: onOff,
  },
  inlineActive: {
    flag: '--inline-active',
    env: 'HAYSTACK_INLINE_ACTIVE',
    type: 'boolean',
    help:
      'Serve HTML, SVG, XML and PDF files inline; off, they are sent as downloads ' +
      '(Content-Disposition: attachment). Every file answer carries Content-Security-Policy: ' +
      'sandbox, so stored scripts never run either way.',
    schema: onOff,
  },
  adminToken: {
    flag: '--admin-token',
    env: 'HAYSTACK_ADMIN_TOKEN',
    type: 'string',
    value: 'TOKEN',
    help:
      'Turns on POST /admin/compact and POST /admin/volumes/{id}/readonly, which then need the ' +
      'header "Authorization: Bearer TOKEN": at least 16 of A-Z a-z 0-9 - . _ ~ + / (openssl ' +
      'rand -hex 24 makes one). Prefer the variable: flags show in ps to every user of the ' +
      'machine. Off: no /admin routes at all.',
    secret: true,
    schema: v.pipe(
      v.string(),
      v.regex(BEARER_TOKEN, ADMIN_TOKEN_RULE),
      v.minLength(16, ADMIN_TOKEN_RULE),
    ),
  },
  maxConnections: {
    flag: '--max-connections',
    env: 'HAYSTACK_MAX_CONNECTIONS',
    type: 'string',
    value: 'N',
    default: '1024',
    help:
      'Open connections at most; past it a new one is closed as soon as it is accepted. Keep it ' +
      'under the descriptor limit (ulimit -n) less two per volume.',
    schema: count(1, 1_000_000),
  },
  maxPipeline: {
    flag: '--max-pipeline',
    env: 'HAYSTACK_MAX_PIPELINE',
    type: 'string',
    value: 'N',
    default: '16',
    help:
      'Unanswered requests one connection may have (HTTP pipelining); one more closes the ' +
      'connection.',
    schema: count(1, 10_000),
  },
  headersTimeout: {
    flag: '--headers-timeout',
    env: 'HAYSTACK_HEADERS_TIMEOUT',
    type: 'string',
    value: 'T',
    default: '20s',
    help:
      "Time a request's header block may take to arrive; then 408 and the connection is " +
      'closed. 20s, 500ms, or seconds (1.5).',
    schema: duration,
  },
  idleTimeout: {
    flag: '--idle-timeout',
    env: 'HAYSTACK_IDLE_TIMEOUT',
    type: 'string',
    value: 'T',
    default: '60s',
    help:
      'A connection on which no byte arrives and none of the pending answer leaves for this ' +
      'long is closed (a stalled upload, a client that stops reading), unless it only waits ' +
      "for the server's answer. 20s, 500ms, or seconds (1.5).",
    schema: duration,
  },
  logLevel: {
    flag: '--log-level',
    env: 'HAYSTACK_LOG_LEVEL',
    type: 'string',
    value: 'LEVEL',
    default: 'info',
    help:
      'Least severe log lines shown: fatal, error, warn, info (start-up, shutdown, compactions, ' +
      'one line per request), debug, trace, or silent. The log goes to stdout, one JSON object a ' +
      'line, or readable when stdout is a terminal.',
    schema: logLevel,
  },
  directory: {
    flag: '--directory',
    env: 'HAYSTACK_DIRECTORY',
    type: 'string',
    value: 'URL',
    help:
      "The cluster's Directory, a PostgreSQL 14 or newer: postgres://user:password@host:5432/db. " +
      'Its tables are made on first use. Prefer the variable: flags show in ps.',
    secret: true,
    schema: directoryUrl,
  },
  clusterToken: {
    flag: '--cluster-token',
    env: 'HAYSTACK_CLUSTER_TOKEN',
    type: 'string',
    value: 'T',
    help:
      "The secret gateways show nodes (Authorization: Bearer T); a node's internal API answers " +
      '401 without it. The same on every node and gateway: at least 16 of A-Z a-z 0-9 - . _ ~ + / ' +
      '(openssl rand -hex 24). Prefer the variable: flags show in ps.',
    secret: true,
    schema: v.pipe(
      v.string(),
      v.regex(BEARER_TOKEN, CLUSTER_TOKEN_RULE),
      v.minLength(16, CLUSTER_TOKEN_RULE),
    ),
  },
  advertise: {
    flag: '--advertise',
    env: 'HAYSTACK_ADVERTISE',
    type: 'string',
    value: 'URL',
    help:
      'The base URL gateways reach this node at, such as http://10.0.0.5:8080. Default: ' +
      'http://HOST:PORT, with the port the node listens on.',
    schema: baseUrl,
  },
  replicas: {
    flag: '--replicas',
    env: 'HAYSTACK_REPLICAS',
    type: 'string',
    value: 'R',
    default: '3',
    help:
      'Replicas of each new logical volume, on as many nodes; a write is answered once every ' +
      'replica has it on disk, and takes fewer than R nodes up as 503.',
    schema: count(1, 16),
  },
  nodeTimeout: {
    flag: '--node-timeout',
    env: 'HAYSTACK_NODE_TIMEOUT',
    type: 'string',
    value: 'S',
    default: '10',
    help:
      'How long a node may miss heartbeats before it counts as down: seconds (1.5), or 20s, ' +
      '500ms. Nodes heartbeat four times as often.',
    schema: duration,
  },
} as const satisfies Record<string, OptionSpec>;

type Table = typeof options;
export type OptionName = keyof Table;

export const optionNames = Object.keys(options) as OptionName[];

/** The table's entry for `name`, as the common shape (the literal types are for `Config`). */
export const option = (name: OptionName): OptionSpec => options[name];

/** A value with a default, or a switch, is always there; any other may be undefined (off). */
type ValueOf<E extends OptionSpec> = E extends { type: 'boolean' } | { default: string }
  ? v.InferOutput<E['schema']>
  : v.InferOutput<E['schema']> | undefined;

export type Config = { readonly [K in OptionName]: ValueOf<Table[K]> };

/** What the usage and the README show as the default. */
export function shownDefault(spec: OptionSpec): string {
  return spec.type === 'string' && spec.default !== undefined ? spec.default : 'off';
}

/**
 * Each option's schema with its default (a switch is off, 'false'): the text of the flags and
 * variables in, a `Config` out. Built from the table at run time, so its type is stated here.
 */
export const configSchema = v.object(
  Object.fromEntries(
    optionNames.map((name) => {
      const spec = option(name);
      return [name, v.optional(spec.schema, spec.type === 'boolean' ? 'false' : spec.default)];
    }),
  ),
) as unknown as v.GenericSchema<Partial<Record<OptionName, string>>, Config>;

/**
 * The options `names` as they are in effect, for a log line: each value, a secret's only as
 * whether it is set.
 */
export function loggableConfig(
  config: Partial<Config>,
  names: readonly OptionName[],
): Record<string, unknown> {
  return Object.fromEntries(
    names.map((name) => {
      const value = config[name];
      return [name, option(name).secret && value !== undefined ? '(set)' : value];
    }),
  );
}
