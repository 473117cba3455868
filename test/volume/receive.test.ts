import { readdir } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GATHER_MAX } from '../../adapters/spool.ts';
import { type ReceivedBody, receiveBody } from '../../adapters/volume/receive.ts';
import type { PutInput } from '../../storage/index.ts';
import { chunksOf, expectBytes, probeStream, randomBytes, readAll } from '../contract/helpers.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const LARGE = GATHER_MAX + 1;

describe('receiveBody: gather, stream into the volume, or spool', () => {
  let dir: string;
  let asked: number[];
  /** Space for the first `room` requests, none after. */
  let room: number;
  const reserve = (size: number) => {
    asked.push(size);
    return room-- > 0 ? { slot: size } : undefined;
  };
  const receive = (input: PutInput) => receiveBody(input, dir, reserve);
  const spoolFiles = async () => (await readdir(dir)).filter((name) => name.endsWith('.spool'));

  beforeEach(async () => {
    dir = await makeTempDir('haystack-receive-');
    asked = [];
    room = 1;
  });

  afterEach(async () => {
    await removeTempDir(dir);
  });

  async function bytesOf(received: ReceivedBody<unknown>): Promise<Uint8Array> {
    if (received.kind === 'memory') return received.data;
    if (received.kind === 'reserved') return readAll(received.body);
    const bytes = await readAll(received.read());
    // A spool file reads back whole as often as asked (a gateway sends it to every replica).
    expectBytes(await readAll(received.read()), bytes);
    await received.remove();
    return bytes;
  }

  it('gathers a body in hand, and a stream that declares at most GATHER_MAX bytes', async () => {
    const bytes = randomBytes(GATHER_MAX);
    for (const body of [bytes, probeStream(chunksOf(bytes, 65_536)).stream]) {
      const received = await receive({ body, length: GATHER_MAX });
      expect(received.kind).toBe('memory');
      expectBytes(await bytesOf(received), bytes);
    }
    expect(asked).toEqual([]);
  });

  it('hands a larger declared stream on unread when it gets space, and spools it when not', async () => {
    const bytes = randomBytes(LARGE);
    const probe = probeStream(chunksOf(bytes, 65_536));
    const streamed = await receive({ body: probe.stream, length: LARGE });
    expect(streamed).toMatchObject({ kind: 'reserved', size: LARGE, reservation: { slot: LARGE } });
    expect(probe.pulls).toBe(0);

    const spooled = await receive({
      body: probeStream(chunksOf(bytes, 65_536)).stream,
      length: LARGE,
    });
    expect(spooled).toMatchObject({ kind: 'file', size: LARGE });
    expect(await spoolFiles()).toHaveLength(1);
    expectBytes(await bytesOf(spooled), bytes);
    expect(await spoolFiles()).toEqual([]);
    expect(asked).toEqual([LARGE, LARGE]);
  });

  it('spools a chunked body, in memory while it is small', async () => {
    const small = randomBytes(GATHER_MAX);
    const inMemory = await receive({ body: probeStream(chunksOf(small, 4096)).stream });
    expect(inMemory.kind).toBe('memory');
    expectBytes(await bytesOf(inMemory), small);
    const large = randomBytes(LARGE);
    const onDisk = await receive({ body: probeStream(chunksOf(large, 4096)).stream });
    expect(onDisk.kind).toBe('file');
    expectBytes(await bytesOf(onDisk), large);
    expect(asked).toEqual([]);
  });

  it('refuses a declared length over the limit before asking for space, and cancels the body', async () => {
    const probe = probeStream([randomBytes(10)]);
    await expect(
      receive({ body: probe.stream, length: LARGE, limit: LARGE - 1 }),
    ).rejects.toMatchObject({
      code: 'too_large',
    });
    expect(asked).toEqual([]);
    expect(probe.pulls).toBe(0);
    expect(probe.cancelled).toBe(true);
  });

  it('refuses a spooled body that breaks its declared length either way, leaving no spool file', async () => {
    room = 0;
    for (const size of [LARGE + GATHER_MAX, LARGE + 1, LARGE - 1]) {
      const body = probeStream(chunksOf(randomBytes(size), 65_536)).stream;
      await expect(receive({ body, length: LARGE })).rejects.toMatchObject({ code: 'bad_request' });
    }
    expect(await spoolFiles()).toEqual([]);
  });

  it('refuses a chunked body past the limit, leaving no spool file', async () => {
    const probe = probeStream(chunksOf(randomBytes(3 * GATHER_MAX), 65_536));
    await expect(receive({ body: probe.stream, limit: 2 * GATHER_MAX })).rejects.toMatchObject({
      code: 'too_large',
    });
    expect(probe.cancelled).toBe(true);
    expect(await spoolFiles()).toEqual([]);
  });
});
