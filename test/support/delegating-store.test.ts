import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { type BlobStore, isStoreError, StoreError } from '../../storage/index.ts';
import { DelegatingStore, type StoreMethod } from './delegating-store.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

type Call = [method: StoreMethod, args: unknown[]];

/**
 * A store that records every call with its arguments and answers each with a token naming the
 * method, so that a forwarder that drops, adds or reorders an argument, or loses the answer, shows.
 */
function recordingStore(withCapabilities: boolean): { store: BlobStore; calls: Call[] } {
  const calls: Call[] = [];
  const record =
    (method: StoreMethod) =>
    async (...args: unknown[]) => {
      calls.push([method, args]);
      return `answer of ${method}`;
    };
  const methods: StoreMethod[] = ['put', 'get', 'head', 'replace', 'delete', 'sync', 'status'];
  methods.push('close');
  const store: Record<string, unknown> = {};
  for (const method of methods) store[method] = record(method);
  store.capabilities = withCapabilities
    ? {
        volumes: { compact: record('compact'), setVolumeReadOnly: record('setVolumeReadOnly') },
        replicas: { putReplica: record('putReplica') },
      }
    : {};
  return { store: store as unknown as BlobStore, calls };
}

describe('DelegatingStore', () => {
  it('forwards every port method with every argument (key, range, cookie, input) and its answer', async () => {
    const { store: inner, calls } = recordingStore(false);
    const store = new DelegatingStore(inner);
    const input = { body: null, contentType: 'x/y', length: 0, limit: 10 };
    const range = { start: 2, end: 5 };
    const answers = [
      await store.put(input),
      await store.get(7, range, 0xdead_beef),
      await store.head(8, 0x0102_0304),
      await store.replace(9, input, 0xffff_fffe),
      await store.delete(10, 1),
      await store.sync(),
      await store.status(),
      await store.close(),
    ];
    expect(calls).toEqual([
      ['put', [input]],
      ['get', [7, range, 0xdead_beef]],
      ['head', [8, 0x0102_0304]],
      ['replace', [9, input, 0xffff_fffe]],
      ['delete', [10, 1]],
      ['sync', []],
      ['status', []],
      ['close', []],
    ]);
    // The very objects the caller gave, not copies.
    expect(calls[0]?.[1][0]).toBe(input);
    expect(calls[1]?.[1][1]).toBe(range);
    expect(answers).toEqual(calls.map(([method]) => `answer of ${method}`));
  });

  it('offers the capabilities exactly when the inner store does, and forwards their calls', async () => {
    expect(new DelegatingStore(recordingStore(false).store).capabilities).toEqual({});
    expect(new DelegatingStore(createMemoryStore()).capabilities.volumes).toBeUndefined();

    const { store: inner, calls } = recordingStore(true);
    const { volumes, replicas } = new DelegatingStore(inner).capabilities;
    const input = { body: null };
    expect(await volumes?.compact(3)).toBe('answer of compact');
    expect(await volumes?.compact()).toBe('answer of compact');
    expect(await volumes?.setVolumeReadOnly(4)).toBe('answer of setVolumeReadOnly');
    expect(await replicas?.putReplica(5, 6, input)).toBe('answer of putReplica');
    expect(calls).toEqual([
      ['compact', [3]],
      ['compact', [undefined]],
      ['setVolumeReadOnly', [4]],
      ['putReplica', [5, 6, input]],
    ]);
  });

  it('wrapping the volume store keeps its operator calls, where the admin routes find them', async () => {
    const dir = await makeTempDir();
    const volumes = await openVolumeStore({ dir });
    try {
      const store = new DelegatingStore(volumes);
      const admin = store.capabilities.volumes;
      expect(admin).toBeDefined();
      const info = await store.put({ body: new Uint8Array([1]) });
      expect(await admin?.setVolumeReadOnly(info.volume)).toMatchObject({
        id: info.volume,
        readOnly: true,
      });
      await store.delete(info.key);
      expect(await admin?.compact(info.volume)).toMatchObject([{ volume: info.volume }]);
    } finally {
      await volumes.close();
      await removeTempDir(dir);
    }
  });

  it('an override replaces its one method; the others still forward', async () => {
    const { store: inner, calls } = recordingStore(false);
    const seen: unknown[][] = [];
    const store = new DelegatingStore(inner, {
      head: async (key, cookie) => {
        seen.push([key, cookie]);
        throw new StoreError('io_error', 'the disk went away');
      },
      volumes: {
        compact: async (volume) => {
          seen.push([volume]);
          return [];
        },
      },
    });
    const err = await store.head(5, 6).catch((e: unknown) => e);
    expect(isStoreError(err) && err.code).toBe('io_error');
    // An override offers the capability; its calls without an override have nowhere to go.
    expect(await store.capabilities.volumes?.compact(2)).toEqual([]);
    await expect(store.capabilities.volumes?.setVolumeReadOnly(1)).rejects.toThrow(
      /no setVolumeReadOnly/,
    );
    expect(store.capabilities.replicas).toBeUndefined();
    await store.get(5, undefined, 6);
    expect(seen).toEqual([[5, 6], [2]]);
    expect(calls).toEqual([['get', [5, undefined, 6]]]);
  });

  it('before runs ahead of every forwarded call, and a throw there rejects that call only', async () => {
    const { store: inner, calls } = recordingStore(true);
    const before: StoreMethod[] = [];
    const store = new DelegatingStore(inner, {
      before: (method) => {
        before.push(method);
        if (method === 'delete') throw new StoreError('read_only', 'no deletes here');
      },
    });
    await store.put({ body: null });
    const err = await store.delete(1, 2).catch((e: unknown) => e);
    expect(isStoreError(err) && err.code).toBe('read_only');
    await store.capabilities.volumes?.compact(1);
    await store.capabilities.volumes?.setVolumeReadOnly(1);
    await store.capabilities.replicas?.putReplica(1, 2, { body: null });
    expect(before).toEqual(['put', 'delete', 'compact', 'setVolumeReadOnly', 'putReplica']);
    expect(calls.map(([method]) => method)).toEqual([
      'put',
      'compact',
      'setVolumeReadOnly',
      'putReplica',
    ]);
  });

  it('the cookie reaches a real store: a wrong one is not_found through the wrapper', async () => {
    const store = new DelegatingStore(createMemoryStore());
    const info = await store.put({ body: new Uint8Array([1, 2, 3]) });
    const wrong = (info.cookie ^ 1) >>> 0;
    for (const call of [
      () => store.get(info.key, undefined, wrong),
      () => store.get(info.key, { start: 0, end: 0 }, wrong),
      () => store.head(info.key, wrong),
      () => store.replace(info.key, { body: null }, wrong),
      () => store.delete(info.key, wrong),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(isStoreError(err) && err.code).toBe('not_found');
    }
    expect(await store.head(info.key, info.cookie)).toEqual(info);
    await store.close();
  });
});
