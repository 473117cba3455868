import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import type { BlobStore } from '../../storage/index.ts';
import { describeStore } from './describe-store.ts';

function mutant(name: string, wrap: (s: BlobStore) => Partial<BlobStore>) {
  describeStore(`MUTANT ${name}`, async () => {
    const inner = createMemoryStore();
    const over = wrap(inner);
    const store: BlobStore = {
      put: (i) => inner.put(i), get: (k, r) => inner.get(k, r), head: (k) => inner.head(k),
      replace: (k, i) => inner.replace(k, i), delete: (k) => inner.delete(k), sync: () => inner.sync(),
      status: () => inner.status(), close: () => inner.close(), ...over,
    };
    return { store, cleanup: () => inner.close() };
  });
}
mutant('range-exclusive', (s) => ({ get: (k, r) => s.get(k, r && { start: r.start, end: r.end - 1 }) }));
mutant('ignores-limit', (s) => ({ put: ({ limit: _l, ...i }) => s.put(i) }));
mutant('ignores-length', (s) => ({ put: ({ length: _l, ...i }) => s.put(i) }));
mutant('close-noop', () => ({ close: async () => {} }));
mutant('delete-swallows', (s) => ({ delete: async (k) => { await s.delete(k).catch(() => {}); } }));
mutant('trunc-key', (s) => ({ get: (k, r) => s.get(Math.trunc(Math.abs(k)), r) }));
mutant('no-default-type', (s) => ({ put: async (i) => { const f = await s.put(i); return i.contentType ? f : { ...f, contentType: '' }; } }));
mutant('lowercase-type', (s) => ({ put: (i) => s.put(i.contentType ? { ...i, contentType: i.contentType.toLowerCase() } : i) }));
