import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { DEFAULT_CONTENT_TYPE, type PutInput } from '../../storage/index.ts';
import { readBody } from '../read-body.ts';
import { GATHER_MAX, spoolBody } from '../spool.ts';
import type { ReplicaBody } from './replica-api-client.ts';

export interface HeldBody {
  body: ReplicaBody;
  /** Frees what holds the bytes (deletes the spool file). */
  release(): Promise<void>;
}

/**
 * A gateway takes the whole upload before it sends it on: up to GATHER_MAX in memory, larger to
 * a spool file, with the limit and the declared length enforced as the bytes arrive (nothing
 * reaches a replica from a body that breaks them). So every replica gets the same bytes, a write
 * that failed on one volume can be sent again to another, and memory stays flat.
 */
export async function holdBody(input: PutInput, newSpoolPath: () => string): Promise<HeldBody> {
  const contentType = input.contentType ?? DEFAULT_CONTENT_TYPE;
  const { body, length, limit = Number.POSITIVE_INFINITY } = input;
  const inHand = body === null || body instanceof Uint8Array;
  if (inHand || (length !== undefined && length <= GATHER_MAX)) {
    const bytes = await readBody(input);
    return inMemory(bytes, contentType);
  }
  const spooled = await spoolBody(body, limit, newSpoolPath, length);
  if (spooled.kind === 'memory') return inMemory(spooled.data, contentType);
  return {
    body: {
      size: spooled.size,
      contentType,
      open: () => Readable.fromWeb(spooled.read() as NodeWebStream<Uint8Array>),
    },
    release: spooled.remove,
  };
}

function inMemory(bytes: Uint8Array, contentType: string): HeldBody {
  return {
    body: { size: bytes.byteLength, contentType, bytes },
    release: async () => {},
  };
}
