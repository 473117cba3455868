import { describe, expect, it } from 'vitest';
import { lockBody, readBody, readChunks } from '../../adapters/read-body.ts';
import { StoreError } from '../../storage/index.ts';
import { chunksOf, probeStream, randomBytes, rejection } from '../contract/helpers.ts';

const LIMIT = 1000;

const TOO_LARGE = {
  code: 'too_large',
  message: `the body is larger than the limit of ${LIMIT} bytes`,
};
const ABORTED = { code: 'bad_request', message: 'the body was cut off before its end' };
const mismatch = (has: string, declared: number) => ({
  code: 'bad_request',
  message: `the body has ${has} bytes, but Content-Length said ${declared}`,
});

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

describe('readBody', () => {
  it.each([
    ['bytes', (b: Uint8Array) => b],
    ['one chunk', (b: Uint8Array) => probeStream([b]).stream],
    ['chunks of 7', (b: Uint8Array) => probeStream(chunksOf(b, 7)).stream],
  ])('takes a body of %s up to the limit and refuses one byte more', async (_, body) => {
    for (const size of [0, LIMIT - 1, LIMIT]) {
      const bytes = randomBytes(size);
      expect(await readBody({ body: body(bytes), limit: LIMIT })).toEqual(bytes);
    }
    const over = await rejection(readBody({ body: body(randomBytes(LIMIT + 1)), limit: LIMIT }));
    expect(over).toBeInstanceOf(StoreError);
    expect(over).toMatchObject(TOO_LARGE);
  });

  it('takes an empty body at a limit of 0', async () => {
    expect(await readBody({ body: null, limit: 0 })).toEqual(new Uint8Array(0));
    expect(await readBody({ body: probeStream([]).stream, limit: 0, length: 0 })).toEqual(
      new Uint8Array(0),
    );
  });

  it('refuses a declared length over the limit before reading a byte, and cancels the body', async () => {
    const probe = probeStream([randomBytes(10)]);
    await expect(readBody({ body: probe.stream, length: LIMIT + 1, limit: LIMIT })).rejects.toEqual(
      expect.objectContaining(TOO_LARGE),
    );
    expect(probe.pulls).toBe(0);
    expect(probe.cancelled).toBe(true);
    await expect(
      readBody({ body: randomBytes(10), length: LIMIT + 1, limit: LIMIT }),
    ).rejects.toMatchObject(TOO_LARGE);
  });

  it('refuses a body longer than its declared length, in hand or as it arrives', async () => {
    const bytes = randomBytes(100);
    await expect(readBody({ body: bytes, length: 99 })).rejects.toMatchObject(
      mismatch('more than 99', 99),
    );
    const probe = probeStream(chunksOf(bytes, 10));
    await expect(readBody({ body: probe.stream, length: 55, limit: LIMIT })).rejects.toMatchObject(
      mismatch('more than 55', 55),
    );
    expect(probe.bytesOut).toBe(60); // stopped at the chunk that went past
    expect(probe.cancelled).toBe(true);
  });

  it('refuses a body shorter than its declared length', async () => {
    await expect(readBody({ body: randomBytes(10), length: 11 })).rejects.toMatchObject(
      mismatch('10', 11),
    );
    await expect(readBody({ body: null, length: 3 })).rejects.toMatchObject(mismatch('0', 3));
    const probe = probeStream(chunksOf(randomBytes(50), 10));
    await expect(readBody({ body: probe.stream, length: 51 })).rejects.toMatchObject(
      mismatch('50', 51),
    );
  });

  it('answers a client stream that fails with bad_request, keeping the cause', async () => {
    const cause = new Error('socket hang up');
    const probe = probeStream(chunksOf(randomBytes(30), 10), { failWith: cause });
    const err = await rejection(readBody({ body: probe.stream }));
    expect(err).toMatchObject(ABORTED);
    expect((err as Error).cause).toBe(cause);
  });
});

describe('readChunks', () => {
  it('without bounds hands out every chunk as it came', async () => {
    const chunks = chunksOf(randomBytes(100), 30);
    expect(await collect(readChunks(probeStream(chunks).stream))).toEqual(chunks);
  });

  it('refuses a stream at the chunk that passes the limit, and cancels it', async () => {
    const probe = probeStream(chunksOf(randomBytes(3 * LIMIT), 100));
    const seen: number[] = [];
    const reading = (async () => {
      for await (const chunk of readChunks(probe.stream, { limit: LIMIT })) {
        seen.push(chunk.byteLength);
      }
    })();
    await expect(reading).rejects.toMatchObject(TOO_LARGE);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(LIMIT); // the refused chunk is not handed out
    expect(probe.cancelled).toBe(true);
  });

  it('checks the declared length before the limit, so the answer does not depend on chunking', async () => {
    const body = probeStream([randomBytes(2 * LIMIT)]).stream;
    await expect(collect(readChunks(body, { length: 10, limit: LIMIT }))).rejects.toMatchObject(
      mismatch('more than 10', 10),
    );
  });

  it('ends short of the declared length with bad_request', async () => {
    const body = probeStream(chunksOf(randomBytes(30), 10)).stream;
    await expect(collect(readChunks(body, { length: 31 }))).rejects.toMatchObject(
      mismatch('30', 31),
    );
  });

  it('passes a StoreError from the stream through (a body the store made)', async () => {
    const failure = new StoreError('io_error', 'the spool file could not be read');
    const body = probeStream([randomBytes(5)], { failWith: failure }).stream;
    await expect(collect(readChunks(body))).rejects.toBe(failure);
  });

  it('cancels and releases the stream when the caller stops early', async () => {
    const probe = probeStream(chunksOf(randomBytes(100), 10));
    for await (const _ of readChunks(probe.stream)) break;
    expect(probe.cancelled).toBe(true);
    expect(probe.stream.locked).toBe(false);
  });

  it('refuses a stream another reader holds', () => {
    const body = probeStream([]).stream;
    body.getReader();
    expect(() => lockBody(body)).toThrow(
      expect.objectContaining({ code: 'bad_request' }) as unknown as Error,
    );
  });
});
