import { type FileHandle, open, rm } from 'node:fs/promises';
import { StoreError } from '../storage/index.ts';
import { readChunks } from './read-body.ts';

/**
 * Bodies up to this size are gathered in memory; past it, a body goes on to a spool file, which
 * is then read back (by the volume adapter, as a body of known length; by a cluster's gateway,
 * once for each replica and again for a retry). So memory stays flat whatever the size; the price
 * is writing a large upload twice.
 *
 * The volume adapter spools a body of unknown length (a chunked upload), as a needle's header
 * holds its size and its space is reserved before the bytes arrive; one of declared length it
 * streams straight into space reserved for it, when it can.
 */
export const GATHER_MAX = 1024 * 1024;

/** Pieces in which a spool file is read back. */
const READ_PIECE = 1024 * 1024;

export type SpooledBody =
  | { kind: 'memory'; data: Uint8Array }
  | {
      kind: 'file';
      size: number;
      /** The spooled bytes, read back from the start: a new stream at each call. */
      read: () => ReadableStream<Uint8Array>;
      /** Closes and deletes the spool file. */
      remove: () => Promise<void>;
    };

/**
 * Reads a body to its end with
 * the bounds of `readChunks` (`too_large` past `limit`; with a declared `length`, exactly that
 * many bytes). A failed or aborted client stream is `bad_request`; a failing disk throws the fs
 * error. On any failure the spool file is gone before this rejects.
 */
export async function spoolBody(
  body: ReadableStream<Uint8Array>,
  limit: number,
  /** A new spool file's path (it must not exist; it is made with `wx`). */
  newPath: () => string,
  length?: number,
): Promise<SpooledBody> {
  const gathered: Uint8Array[] = [];
  let total = 0;
  let spool: { path: string; handle: FileHandle } | undefined;
  try {
    for await (const chunk of readChunks(body, { limit, length })) {
      const at = total;
      total += chunk.byteLength;
      if (spool) {
        await writeAll(spool.handle, chunk, at);
        continue;
      }
      gathered.push(chunk);
      if (total > GATHER_MAX) {
        const path = newPath();
        spool = { path, handle: await open(path, 'wx+') };
        let position = 0;
        for (const piece of gathered.splice(0)) {
          await writeAll(spool.handle, piece, position);
          position += piece.byteLength;
        }
      }
    }
  } catch (err) {
    if (spool) await removeSpool(spool.handle, spool.path);
    throw err;
  }
  if (!spool) return { kind: 'memory', data: Buffer.concat(gathered, total) };
  const { handle, path } = spool;
  return {
    kind: 'file',
    size: total,
    read: () => readBack(handle, total),
    remove: () => removeSpool(handle, path),
  };
}

async function writeAll(handle: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < chunk.byteLength; ) {
    const { bytesWritten } = await handle.write(
      chunk,
      done,
      chunk.byteLength - done,
      position + done,
    );
    done += bytesWritten;
  }
}

function readBack(handle: FileHandle, size: number): ReadableStream<Uint8Array> {
  let position = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const length = Math.min(READ_PIECE, size - position);
        if (length === 0) {
          controller.close();
          return;
        }
        const piece = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(piece, 0, length, position).catch((err) => {
          throw new StoreError('io_error', 'the upload could not be read back from disk', {
            cause: err,
          });
        });
        if (bytesRead === 0) {
          throw new StoreError('io_error', 'the upload spooled to disk came back short');
        }
        position += bytesRead;
        controller.enqueue(piece.subarray(0, bytesRead));
      },
    },
    { highWaterMark: 0 },
  );
}

async function removeSpool(handle: FileHandle, path: string): Promise<void> {
  await handle.close().catch(() => {});
  await rm(path, { force: true });
}
