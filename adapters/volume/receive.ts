import type { PutInput } from '../../storage/index.ts';
import { readBody, tooLarge } from '../read-body.ts';
import { GATHER_MAX, type SpooledBody, spoolBody } from '../spool.ts';
import { newSpoolPath } from './temp-files.ts';

/**
 * How an upload's bytes reach the volume: gathered in memory, streamed from the client straight
 * into space reserved for them, or through a spool file.
 */
export type ReceivedBody<Reservation> =
  | SpooledBody
  | {
      kind: 'reserved';
      /** The client's stream, still to be read with `readChunks(body, { length: size })`. */
      body: ReadableStream<Uint8Array>;
      size: number;
      reservation: Reservation;
    };

/**
 * Decides where an upload goes before the volume, and reads it as far as that takes. A body in
 * hand, or a stream declaring at most GATHER_MAX bytes, is gathered (`memory`). A larger stream of
 * declared length (within the limit) streams into the volume if `reserve(size)` finds it space;
 * without space, or without a declared length, it is spooled (`memory` or `file`), costing what
 * the client really sent. Refusals are `StoreError`s; a failing disk throws the fs error.
 */
export async function receiveBody<Reservation>(
  input: PutInput,
  dir: string,
  reserve: (size: number) => Reservation | undefined,
): Promise<ReceivedBody<Reservation>> {
  const { body, length, limit = Number.POSITIVE_INFINITY } = input;
  const inHand = body === null || body instanceof Uint8Array;
  if (inHand || (length !== undefined && length <= GATHER_MAX)) {
    return { kind: 'memory', data: await readBody(input) };
  }
  if (length !== undefined) {
    // Before any space is reserved for it.
    if (length > limit) {
      await body.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    const reservation = reserve(length);
    if (reservation !== undefined) return { kind: 'reserved', body, size: length, reservation };
  }
  return spoolBody(body, limit, () => newSpoolPath(dir), length);
}
