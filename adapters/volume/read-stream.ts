import { crc32 } from 'node:zlib';
import { type ByteRange, isStoreError } from '../../storage/index.ts';
import type { TelemetryHub } from '../telemetry-hub.ts';
import { FOOTER_SIZE } from './needle.ts';
import type { NeedleLocation } from './needle-map.ts';
import { corrupt } from './store-errors.ts';
import type { VolumeFile } from './volume-file.ts';

/** Large files are read in pieces of about this size. */
const READ_PIECE = 1024 * 1024;

/**
 * A large file's bytes, read piece by piece from its place in the volume. A whole-file read is
 * checksummed as it goes and errors at the end if the needle is damaged (telling `telemetry`);
 * a range cannot be checked against the whole-needle checksum, so it relies on the verified
 * header.
 */
export function streamData(
  file: VolumeFile,
  location: NeedleLocation,
  head: Buffer,
  dataSize: number,
  range: ByteRange | undefined,
  telemetry: TelemetryHub,
): ReadableStream<Uint8Array> {
  const dataStart = location.offset + head.byteLength;
  const start = range?.start ?? 0;
  const end = range ? range.end + 1 : dataSize;
  let position = start;
  let checksum = crc32(head);
  // The file object was taken when the key was looked up: if compaction swaps the volume while
  // this streams, the download finishes from the old file, which stays open until then.
  file.retain();
  let released = false;
  const release = () => {
    if (!released) file.release();
    released = true;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (position >= end) {
          if (!range) {
            const footer = await file.read(dataStart + dataSize, FOOTER_SIZE);
            if (footer.readUInt32LE(0) !== checksum) throw corrupt(0, location, 'bad_checksum');
          }
          release();
          controller.close();
          return;
        }
        const piece = await file.read(dataStart + position, Math.min(READ_PIECE, end - position));
        if (piece.byteLength === 0) throw corrupt(0, location, 'truncated');
        if (!range) checksum = crc32(piece, checksum);
        position += piece.byteLength;
        controller.enqueue(piece);
      } catch (err) {
        release();
        // Damage found mid-stream: the answer has begun, but the read still failed as corrupt.
        if (isStoreError(err, 'corrupt')) telemetry.corruptRead(location.volume);
        controller.error(err);
      }
    },
    cancel: release,
  });
}
