import * as v from 'valibot';
import { MAX_KEY } from '../storage/index.ts';
import type { CompactReport, StoreStatus, SyncReport, VolumeStatus } from '../storage/types.ts';
import { type ErrorBody, type ErrorCode, statusByCode } from './errors.ts';

/**
 * valibot schemas of every JSON answer the app gives: what `/openapi.json` documents (see
 * openapi.ts) and what its test checks real answers against. No handler parses its own answers
 * with them; they describe, and the types below keep them from drifting from the code.
 */

const count = (description: string) =>
  v.pipe(v.number(), v.integer(), v.minValue(0), v.description(description));

const ratio = (description: string) =>
  v.pipe(v.number(), v.minValue(0), v.maxValue(1), v.description(description));

const keyNumber = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(1),
  v.maxValue(MAX_KEY),
  v.description('the key: an integer from 1 to 2^53-1'),
);

/** What POST /file and PUT /file/{id} answer (the type `StoredFileJson` is made from it). */
export const storedFileSchema = v.object({
  key: keyNumber,
  fid: v.pipe(
    v.string(),
    v.regex(/^[1-9][0-9]{0,15},[0-9a-f]{8}$/),
    v.description('the file id {key},{cookie}, as /file/{id} takes it'),
  ),
  size: count('length of the file in bytes'),
  offset: count("where the file's needle starts in its volume file (0 without volumes)"),
  flag: v.literal(true),
  volume: v.pipe(
    v.number(),
    v.integer(),
    v.minValue(1),
    v.description('the volume that holds the file'),
  ),
  cookie: v.pipe(
    v.number(),
    v.integer(),
    v.minValue(0),
    v.maxValue(0xffff_ffff),
    v.description("the file's random 32-bit cookie"),
  ),
  contentType: v.string(),
  etag: v.pipe(
    v.string(),
    v.regex(/^"[\x21\x23-\x7e]*"$/),
    v.description('strong entity tag, quoted as HTTP sends it'),
  ),
});

/** DELETE /file/{id}: the key is gone for good. */
export const deletedFileSchema = v.object({ key: keyNumber, flag: v.literal(false) });

/** Every code an error body can carry, from the one table of codes and statuses. */
export const errorCodes = Object.keys(statusByCode) as ErrorCode[];

/** The error body with `code` one of `codes`. */
export function errorBodyOf(codes: readonly ErrorCode[]) {
  return v.object({
    error: v.object({
      code: v.picklist(codes),
      message: v.pipe(v.string(), v.minLength(1), v.description('for people; never a stack')),
    }),
  });
}

/** The error body of any status. */
export const errorBodySchema = errorBodyOf(errorCodes);

/** The codes answered under `status`, from the same table: a 404 is `not_found` or `no_route`. */
export function errorCodesOf(status: number): ErrorCode[] {
  return errorCodes.filter((code) => statusByCode[code] === status);
}

export const volumeStatusSchema = v.object({
  id: v.pipe(v.number(), v.integer(), v.minValue(1)),
  bytes: count('bytes in the volume file'),
  liveNeedles: count('live files'),
  deletedNeedles: count('needles deleted or replaced (garbage until compaction)'),
  liveBytes: count('bytes of live files'),
  garbageBytes: count('bytes of deleted and replaced files: what compaction reclaims'),
  garbageRatio: ratio('garbageBytes / bytes, 0 for an empty volume'),
  sealed: v.pipe(v.boolean(), v.description('takes no more appends')),
  readOnly: v.pipe(v.boolean(), v.description('marked read-only by an operator')),
});

/**
 * GET /status. Loose: a cluster gateway adds `nodes` and `logicalVolumes` (CLUSTER.md), and
 * other figures may join without breaking clients.
 */
export const storeStatusSchema = v.looseObject({
  volumes: v.array(volumeStatusSchema),
  liveNeedles: count('live files'),
  deletedNeedles: count('needles deleted or replaced'),
  bytes: count('bytes in all volume files'),
  liveBytes: count('bytes of live files'),
  garbageBytes: count('bytes compaction would reclaim'),
  garbageRatio: ratio('garbageBytes / bytes'),
  nextKey: keyNumber,
  volumeSize: v.exactOptional(count('bytes at which a volume is sealed')),
});

/** DELETE /sync. */
export const syncReportSchema = v.object({
  synced: v.literal(true),
  volumes: count('volumes whose data and index were flushed to disk'),
  durationMs: v.pipe(v.number(), v.minValue(0)),
});

export const healthSchema = v.object({ status: v.literal('ok') });

export const readinessSchema = v.object({ status: v.literal('ready') });

export const compactReportSchema = v.object({
  volume: v.pipe(v.number(), v.integer(), v.minValue(1)),
  bytesBefore: count('bytes of the volume file before'),
  bytesAfter: count('bytes of the volume file after'),
  reclaimedBytes: count('bytes given back'),
  needles: count('needles copied into the compacted volume'),
  inPlace: v.pipe(v.boolean(), v.description('the writable volume, compacted where it stands')),
  durationMs: v.pipe(v.number(), v.minValue(0)),
});

/** POST /admin/compact: a report per compacted volume (none when nothing had garbage). */
export const compactAnswerSchema = v.object({ compacted: v.array(compactReportSchema) });

/**
 * Compile-time checks that each schema's output is the port's type: a field added to the type
 * and not to its schema (or the other way round, or of another type) fails `tsc`.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const typesMatch: [
  Same<v.InferOutput<typeof volumeStatusSchema>, VolumeStatus>,
  Same<v.InferOutput<typeof compactReportSchema>, CompactReport>,
  Same<Omit<v.InferOutput<typeof syncReportSchema>, 'synced'>, SyncReport>,
  Same<v.InferOutput<typeof errorBodySchema>, ErrorBody>,
  v.InferOutput<typeof storeStatusSchema> extends StoreStatus ? true : false,
] = [true, true, true, true, true];
void typesMatch;
