import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/index.ts';
import { createApp } from '../../handlers/index.ts';
import type { CompactReport, StoreCapabilities, VolumeStatus } from '../../storage/index.ts';
import { expectError, MAX_BODY, upload } from './helpers.ts';

const TOKEN = 'capabilities-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

describe("the store's capabilities", () => {
  it('are read once, when the app is built, not per request', async () => {
    const store = createMemoryStore();
    const compacted: Array<number | undefined> = [];
    const volumes = {
      async compact(volume?: number): Promise<CompactReport[]> {
        compacted.push(volume);
        return [];
      },
      async setVolumeReadOnly(): Promise<VolumeStatus> {
        throw new Error('not called');
      },
    };
    let reads = 0;
    Object.defineProperty(store, 'capabilities', {
      get(): StoreCapabilities {
        reads++;
        return { volumes };
      },
    });
    const app = createApp({ store, maxBody: MAX_BODY, adminToken: TOKEN });
    const readsAtBuild = reads;
    for (let i = 1; i <= 3; i++) {
      const res = await app.request(`/admin/compact?volume=${i}`, {
        method: 'POST',
        headers: AUTH,
      });
      expect(res.status).toBe(200);
    }
    await upload(app, 'a file');
    expect(compacted).toEqual([1, 2, 3]);
    expect(readsAtBuild).toBe(1);
    expect(reads).toBe(1);
  });

  it('without volumes, the admin routes answer 501 not_supported', async () => {
    const app = createApp({ store: createMemoryStore(), maxBody: MAX_BODY, adminToken: TOKEN });
    await expectError(
      await app.request('/admin/compact', { method: 'POST', headers: AUTH }),
      501,
      'not_supported',
    );
  });
});
