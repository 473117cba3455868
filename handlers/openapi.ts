import { toJsonSchema, toJsonSchemaDefs } from '@valibot/to-json-schema';
import type { Handler } from 'hono';
import type * as v from 'valibot';
import { compactBody, volumeIdText } from './admin-routes.ts';
import {
  compactAnswerSchema,
  compactReportSchema,
  deletedFileSchema,
  errorBodyOf,
  errorBodySchema,
  errorCodes,
  errorCodesOf,
  healthSchema,
  readinessSchema,
  storedFileSchema,
  storeStatusSchema,
  syncReportSchema,
  volumeStatusSchema,
} from './answer-schemas.ts';
import type { AppEnv } from './env.ts';
import { errorsAsErrors, statusOf } from './errors.ts';
import { mountPrefix } from './mount-prefix.ts';
import { packageVersion } from './package-version.ts';
import { contentLengthSchema, contentTypeSchema, cookieSchema, keySchema } from './schemas.ts';

/**
 * The OpenAPI 3.1 document of `createApp`'s routes, made from the valibot schemas that validate
 * requests (handlers/schemas.ts, the admin routes') and those of the answers (answer-schemas.ts).
 * Methods a path does not take are operations of their own that answer only 405, so the document
 * says what every request gets.
 */

type Json = { [name: string]: unknown };
type Method = 'get' | 'head' | 'put' | 'post' | 'delete' | 'options' | 'patch';

/** Every method fetch can send, in the order a path item lists them (TRACE it cannot). */
const METHODS: readonly Method[] = ['get', 'head', 'put', 'post', 'delete', 'options', 'patch'];

export interface OpenApiOptions {
  /** `info.version`: the package's. */
  version: string;
  /** Whether the `/admin` routes exist (the app has an admin token). */
  admin: boolean;
  /**
   * Where the app is mounted (`/media`), as `servers`: the paths are the app's own, so a client
   * calls `{prefix}/file`. Default '' (not mounted): no `servers`, which OpenAPI reads as `/`.
   */
  prefix?: string | undefined;
}

/** The answers' schemas, under the names `#/components/schemas/...` gives them. */
function answerSchemas(): Record<string, v.GenericSchema> {
  const byStatus: Record<string, v.GenericSchema> = {};
  for (const status of errorStatuses())
    byStatus[`Error${status}`] = errorBodyOf(errorCodesOf(status));
  return {
    StoredFile: storedFileSchema,
    DeletedFile: deletedFileSchema,
    StoreStatus: storeStatusSchema,
    VolumeStatus: volumeStatusSchema,
    SyncReport: syncReportSchema,
    CompactReport: compactReportSchema,
    CompactAnswer: compactAnswerSchema,
    Health: healthSchema,
    Readiness: readinessSchema,
    ErrorBody: errorBodySchema,
    ...byStatus,
  };
}

function errorStatuses(): number[] {
  return [...new Set(errorCodes.map(statusOf))].sort((a, b) => a - b);
}

/**
 * A request schema as JSON Schema, of what the client sends: conversion stops at the first
 * transform (the key's `Number`), and what JSON Schema cannot say (a `check`, the key's
 * maximum once it is a number) is given in the description, in the validator's own words.
 */
function requestSchema(schema: v.GenericSchema): Json {
  const { $schema: _, ...json } = toJsonSchema(schema, {
    target: 'draft-2020-12',
    typeMode: 'input',
    errorMode: 'ignore',
  }) as Json;
  const rules = rulesOf(schema);
  return rules === '' ? json : { ...json, description: rules };
}

/** The distinct messages of a schema's pipe: the rules its validator words its refusals with. */
function rulesOf(schema: v.GenericSchema): string {
  const pipe = (schema as { pipe?: readonly { message?: unknown }[] }).pipe ?? [];
  const messages = pipe.map((item) => item.message).filter((m) => typeof m === 'string');
  return [...new Set(messages)].join('; ');
}

/** A JSON Schema `pattern` without its anchors, to be put inside another. */
function unanchored(schema: Json): string {
  const pattern = schema.pattern;
  if (typeof pattern !== 'string' || !pattern.startsWith('^') || !pattern.endsWith('$')) {
    throw new Error(`expected an anchored pattern, got ${String(pattern)}`);
  }
  return pattern.slice(1, -1);
}

const schemaRef = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

const header = (description: string, required = true): Json => ({
  description,
  required,
  schema: { type: 'string' },
});

function jsonAnswer(description: string, schema: string, headers?: Json): Json {
  return {
    description,
    ...(headers === undefined ? {} : { headers }),
    content: { 'application/json': { schema: schemaRef(schema) } },
  };
}

/** Headers an error answer carries beside its body. */
const errorHeaders: Record<number, Json> = {
  401: { 'WWW-Authenticate': header('Bearer realm="haystack admin"') },
  405: { Allow: header('the methods this path takes') },
  416: { 'Content-Range': header("bytes */{size}: the file's size") },
};

function errorAnswer(status: number, description: string): Json {
  return jsonAnswer(description, `Error${status}`, errorHeaders[status]);
}

/** The answers every store call can fail with, whatever the route. */
const storeFailures = {
  500: errorAnswer(500, '`io_error`: the disk failed; `corrupt`: stored bytes fail their checksum'),
  503: errorAnswer(503, '`closed`, `locked` or (a cluster) `unavailable`'),
};

const fileHeaders: Json = {
  'Content-Type': header('the type stored with the file'),
  'Content-Length': header('bytes in this answer'),
  ETag: header('strong entity tag of the file'),
  'Cache-Control': header('public, max-age=31536000, immutable: content under a key never changes'),
  'Accept-Ranges': header('bytes'),
  'X-Content-Type-Options': header('nosniff'),
  'Content-Security-Policy': header("sandbox; default-src 'none'"),
  'Content-Disposition': header('attachment, for types a browser would render as a page', false),
};

/** A file's bytes, under the type stored with it (application/octet-stream when none was sent). */
const binary = { 'application/octet-stream': {}, '*/*': {} };

/** What an upload sends: POST /file and PUT /file/{id}. */
function uploadRequest(): { parameters: Json[]; requestBody: Json } {
  return {
    parameters: [
      {
        name: 'Content-Type',
        in: 'header',
        description:
          'stored with the file and sent back on reads; none gives application/octet-stream',
        schema: requestSchema(contentTypeSchema),
      },
      {
        name: 'Content-Length',
        in: 'header',
        description: 'without it the body is sent chunked',
        schema: requestSchema(contentLengthSchema),
      },
    ],
    requestBody: {
      description: 'the file, any bytes of any type (an empty body is an empty file)',
      content: { 'application/octet-stream': {}, '*/*': {} },
    },
  };
}

const uploadFailures = {
  400: errorAnswer(
    400,
    '`bad_request`: a bad Content-Type or Content-Length, or a body longer, shorter or cut off',
  ),
  403: errorAnswer(403, '`read_only`: the store takes no writes'),
  413: errorAnswer(413, '`too_large`: the body is over the limit; nothing was stored'),
  507: errorAnswer(507, '`no_space`: the disk is full; nothing was stored'),
};

function fileIdParameter(): Json {
  const key = requestSchema(keySchema);
  const cookie = requestSchema(cookieSchema);
  return {
    name: 'id',
    in: 'path',
    required: true,
    description: `the key, or the file id {key},{cookie}: ${key.description}; ${cookie.description}`,
    schema: {
      type: 'string',
      pattern: `^(?:${unanchored(key)})(?:,(?:${unanchored(cookie)}))?$`,
    },
  };
}

const idFailures = {
  400: errorAnswer(400, '`bad_key`: the id is not a key or a file id'),
  404: errorAnswer(
    404,
    '`not_found`: no live file under that id (or a bare key where cookies are required)',
  ),
};

const ifNoneMatch: Json = {
  name: 'If-None-Match',
  in: 'header',
  description: 'an ETag the client holds: 304 when it is the file\'s (or "*")',
  schema: { type: 'string' },
};

const notModified: Json = {
  description: 'the ETag matched If-None-Match; no body',
  headers: { ETag: header('strong entity tag of the file'), 'Cache-Control': header('as a 200') },
};

/**
 * A GET and the HEAD that answers as it does, without bodies; `omit` names what HEAD has not
 * (Range is defined for GET only, so neither are its answers).
 */
function withHead(
  get: Json,
  headId: string,
  omit: { statuses?: string[]; parameters?: string[] } = {},
): { get: Json; head: Json } {
  const responses: Record<string, Json> = {};
  for (const [status, answer] of Object.entries(get.responses as Record<string, Json>)) {
    if (omit.statuses?.includes(status)) continue;
    const { content: _, ...rest } = answer;
    responses[status] = rest;
  }
  const head: Json = {
    ...get,
    operationId: headId,
    summary: `${get.summary}, without the body`,
    responses,
  };
  if (Array.isArray(get.parameters)) {
    head.parameters = get.parameters.filter(
      (parameter: Json) => !omit.parameters?.includes(parameter.name as string),
    );
  }
  return { get, head };
}

interface PathEntry {
  /** For the names of its 405 operations: `patchFileNotAllowed`. */
  name: string;
  /** Behind the admin token. */
  admin?: true;
  /** Its path parameters. */
  parameters?: Json[];
  ops: Partial<Record<Method, Json>>;
}

const textAnswer = (description: string, type: string): Json => ({
  description,
  content: { [type]: { schema: { type: 'string' } } },
});

/** The document's paths: each path's own operations, by method. */
function operations(admin: boolean): Record<string, PathEntry> {
  const upload = uploadRequest();
  const paths: Record<string, PathEntry> = {
    '/file': {
      name: 'file',
      ops: {
        post: {
          operationId: 'createFile',
          summary: 'Store a file under a new key',
          ...upload,
          responses: {
            201: jsonAnswer('stored and durable', 'StoredFile', {
              Location: header('/file/{key}, or /file/{key},{cookie} where cookies are required'),
            }),
            ...uploadFailures,
            ...storeFailures,
          },
        },
      },
    },
    '/file/{id}': {
      name: 'fileById',
      parameters: [fileIdParameter()],
      ops: {
        ...withHead(
          {
            operationId: 'readFile',
            summary: 'Read a file, or one byte range of it',
            parameters: [
              ifNoneMatch,
              {
                name: 'Range',
                in: 'header',
                description:
                  'one range of bytes (bytes=a-b, a-, -n); several ranges or a malformed one get the whole file',
                schema: { type: 'string' },
              },
              {
                name: 'If-Range',
                in: 'header',
                description: 'Range applies only while the file has this ETag',
                schema: { type: 'string' },
              },
            ],
            responses: {
              200: { description: 'the whole file', headers: fileHeaders, content: binary },
              206: {
                description: 'the range asked for',
                headers: {
                  ...fileHeaders,
                  'Content-Range': header('bytes {first}-{last}/{size}'),
                },
                content: binary,
              },
              304: notModified,
              ...idFailures,
              416: errorAnswer(
                416,
                "`range_not_satisfiable`: the range starts past the file's end",
              ),
              ...storeFailures,
            },
          },
          'headFile',
          { statuses: ['206', '416'], parameters: ['Range', 'If-Range'] },
        ),
        put: {
          operationId: 'replaceFile',
          summary: 'Store new content under a new key; the old key is gone for good',
          ...upload,
          responses: {
            200: jsonAnswer('stored under its new key', 'StoredFile', {
              Location: header('where the new file is'),
            }),
            ...uploadFailures,
            400: errorAnswer(
              400,
              '`bad_key`: the id is not a key or a file id; `bad_request`: as for POST',
            ),
            404: idFailures[404],
            ...storeFailures,
          },
        },
        delete: {
          operationId: 'deleteFile',
          summary: 'Retire a key for good',
          responses: {
            200: jsonAnswer('deleted, durably', 'DeletedFile'),
            ...idFailures,
            403: uploadFailures[403],
            507: uploadFailures[507],
            ...storeFailures,
          },
        },
      },
    },
    '/sync': {
      name: 'sync',
      ops: {
        delete: {
          operationId: 'syncStore',
          summary: 'Flush every volume and index to disk',
          responses: { 200: jsonAnswer('on disk', 'SyncReport'), ...storeFailures },
        },
      },
    },
    '/status': {
      name: 'status',
      ops: withHead(
        {
          operationId: 'readStatus',
          summary: "The store's volumes and totals",
          responses: { 200: jsonAnswer('the figures', 'StoreStatus'), ...storeFailures },
        },
        'headStatus',
      ),
    },
    '/metrics': {
      name: 'metrics',
      ops: withHead(
        {
          operationId: 'readMetrics',
          summary: 'Prometheus metrics',
          responses: { 200: textAnswer('text exposition format 0.0.4', 'text/plain') },
        },
        'headMetrics',
      ),
    },
    '/healthz': {
      name: 'healthz',
      ops: withHead(
        {
          operationId: 'readHealth',
          summary: 'Liveness: answers while the process serves',
          responses: { 200: jsonAnswer('serving', 'Health') },
        },
        'headHealth',
      ),
    },
    '/readyz': {
      name: 'readyz',
      ops: withHead(
        {
          operationId: 'readReadiness',
          summary: 'Readiness: whether the store is open and takes writes',
          responses: {
            200: jsonAnswer('ready', 'Readiness'),
            503: errorAnswer(
              503,
              '`unavailable`: read-only, closing, or refusing writes; the message says why',
            ),
          },
        },
        'headReadiness',
      ),
    },
    '/openapi.json': {
      name: 'openApi',
      ops: withHead(
        {
          operationId: 'readOpenApi',
          summary: 'This document',
          responses: {
            200: {
              description: 'OpenAPI 3.1',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
          },
        },
        'headOpenApi',
      ),
    },
    '/ui': {
      name: 'ui',
      ops: withHead(
        {
          operationId: 'readUi',
          summary: 'The status page',
          responses: { 200: textAnswer('HTML, no external assets', 'text/html') },
        },
        'headUi',
      ),
    },
  };
  if (!admin) return paths;

  const unauthorized = {
    401: errorAnswer(401, '`unauthorized`: no bearer token, or not the admin token'),
  };
  const notSupported = { 501: errorAnswer(501, '`not_supported`: the store has no volumes') };
  paths['/admin/compact'] = {
    name: 'adminCompact',
    admin: true,
    ops: {
      post: {
        operationId: 'compactVolumes',
        summary: 'Compact every volume with garbage, or the one named; answers once done',
        parameters: [{ name: 'volume', in: 'query', schema: requestSchema(volumeIdText) }],
        requestBody: {
          description: 'optional; names the volume as the query may (both must agree)',
          content: { 'application/json': { schema: requestSchema(compactBody) } },
        },
        responses: {
          200: jsonAnswer('a report per compacted volume', 'CompactAnswer'),
          400: errorAnswer(
            400,
            '`bad_request`: a bad volume, body, or query and body naming two volumes',
          ),
          ...unauthorized,
          404: errorAnswer(404, '`not_found`: no such volume'),
          ...notSupported,
          ...storeFailures,
        },
      },
    },
  };
  paths['/admin/volumes/{id}/readonly'] = {
    name: 'adminReadOnly',
    admin: true,
    parameters: [{ name: 'id', in: 'path', required: true, schema: requestSchema(volumeIdText) }],
    ops: {
      post: {
        operationId: 'markVolumeReadOnly',
        summary: 'Stop appends to a volume for good',
        responses: {
          200: jsonAnswer('the volume, now sealed and read-only', 'VolumeStatus'),
          400: errorAnswer(400, '`bad_request`: the id is not a volume id'),
          ...unauthorized,
          403: errorAnswer(403, '`read_only`: the store takes no writes'),
          404: errorAnswer(404, '`not_found`: no such volume'),
          ...notSupported,
          ...storeFailures,
        },
      },
    },
  };
  return paths;
}

/** The path item: its operations, and a 405 operation for each method it does not take. */
function pathItem({ name, admin, parameters, ops }: PathEntry): Json {
  const allow = METHODS.filter((method) => ops[method] !== undefined)
    .map((method) => method.toUpperCase())
    .join(', ');
  const security = admin ? { security: [{ adminToken: [] }] } : {};
  const item: Json = parameters === undefined ? {} : { parameters };
  for (const method of METHODS) {
    item[method] = {
      ...security,
      ...(ops[method] ?? {
        operationId: `${method}${name[0]?.toUpperCase()}${name.slice(1)}NotAllowed`,
        summary: `${method.toUpperCase()} is not taken here (only ${allow})`,
        responses: {
          ...(admin ? { 401: errorAnswer(401, '`unauthorized`: asked before the method') } : {}),
          405: errorAnswer(405, `\`method_not_allowed\`; Allow: ${allow}`),
        },
      }),
    };
  }
  return item;
}

/** Builds the document; `openApiRoute` serves it. */
export function openApiDocument({ version, admin, prefix = '' }: OpenApiOptions): Json {
  const defs = toJsonSchemaDefs(answerSchemas(), {
    target: 'draft-2020-12',
    overrideRef: ({ referenceId }) => `#/components/schemas/${referenceId}`,
  });
  const schemas: Json = {};
  for (const [name, schema] of Object.entries(defs)) {
    const { $schema: _, ...json } = schema as Json;
    schemas[name] = json;
  }
  const paths: Json = {};
  for (const [path, entry] of Object.entries(operations(admin))) paths[path] = pathItem(entry);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Haystack store',
      version,
      description:
        "Facebook's Haystack blob store over HTTP. Every error answers JSON {error: {code, message}}.",
    },
    ...(prefix === '' ? {} : { servers: [{ url: prefix }] }),
    paths,
    components: {
      schemas,
      ...(admin
        ? {
            securitySchemes: {
              adminToken: { type: 'http', scheme: 'bearer', description: 'the admin token' },
            },
          }
        : {}),
    },
  };
}

/** The document's path in the app. */
const OWN_PATH = '/openapi.json';

/**
 * GET and HEAD /openapi.json. The document is built on the first request (most apps are never
 * asked) and kept as text in two parts, either side of where `servers` goes, with their length;
 * each answer puts its own mount prefix (mount-prefix.ts) between them, so HEAD tells the length
 * too, and nothing is kept per prefix: under `parent.route('/:tenant', app)` a client can send as
 * many as it likes. A failure to build it (package.json unreadable) is answered as any bug is,
 * and the next request tries again.
 */
export function openApiRoute({
  admin,
}: Omit<OpenApiOptions, 'version' | 'prefix'>): Handler<AppEnv> {
  let built: Promise<{ head: string; tail: string; length: number }> | undefined;
  const build = async () => {
    const { openapi, info, ...rest } = openApiDocument({ version: await packageVersion(), admin });
    // `{"openapi":..,"info":{..},` and `"paths":{..},"components":{..}}`: the keys in the order
    // openApiDocument gives them, `servers` between.
    const head = `${JSON.stringify({ openapi, info }).slice(0, -1)},`;
    const tail = JSON.stringify(rest).slice(1);
    return { head, tail, length: byteLength(head) + byteLength(tail) };
  };
  return errorsAsErrors<AppEnv>(async (c) => {
    built ??= build().catch((err: unknown) => {
      built = undefined;
      throw err;
    });
    const { head, tail, length } = await built;
    const prefix = mountPrefix(c, OWN_PATH);
    const servers = prefix === '' ? '' : `"servers":${JSON.stringify([{ url: prefix }])},`;
    return new Response(head + servers + tail, {
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': String(length + byteLength(servers)),
      },
    });
  });
}

const encoder = new TextEncoder();
const byteLength = (text: string): number => encoder.encode(text).byteLength;
