import { describe, expect, it } from 'vitest';
import type { StoreContext } from './describe-store.ts';
import { expectCode, randomBytes, streamOf } from './helpers.ts';

/** The contract's `close` tests. */
export function testClose({ fx }: StoreContext): void {
  describe('close', () => {
    it('after close every method rejects with closed; closing again is harmless', async () => {
      const { store } = fx();
      const a = await store.put({ body: randomBytes(10) });
      const b = await store.put({ body: randomBytes(10) });
      await store.close();

      await expectCode(store.put({ body: randomBytes(10) }), 'closed');
      await expectCode(store.put({ body: streamOf([randomBytes(10)]) }), 'closed');
      await expectCode(store.put({ body: null }), 'closed');
      await expectCode(store.get(a.key), 'closed');
      await expectCode(store.get(a.key, { start: 0, end: 1 }), 'closed');
      await expectCode(store.get(b.key + 1000), 'closed');
      await expectCode(store.head(a.key), 'closed');
      await expectCode(store.replace(a.key, { body: randomBytes(10) }), 'closed');
      await expectCode(store.delete(b.key), 'closed');
      await expectCode(store.sync(), 'closed');
      await expectCode(store.status(), 'closed');
      await expect(store.close()).resolves.toBeUndefined();
    });
  });
}
