import { afterEach, beforeEach, describe } from 'vitest';
import type { BlobStore } from '../../storage/index.ts';
import { testBodies } from './bodies.ts';
import { testClose } from './close.ts';
import { testConcurrency } from './concurrency.ts';
import { testContentTypes } from './content-types.ts';
import { testCookies } from './cookies.ts';
import { testDelete } from './delete.ts';
import { testKeys } from './keys.ts';
import { testLimits } from './limits.ts';
import { testPutGetHead } from './put.ts';
import { testRanges } from './ranges.ts';
import { testReopen } from './reopen.ts';
import { testReplace } from './replace.ts';
import { testReplicas } from './replicas.ts';
import { testStatusAndSync } from './status.ts';

/**
 * What an adapter's test file hands the suite. `open` is called before every test and must give
 * an empty store of its own. The suite closes every store that `reopen` gives it; `cleanup` runs
 * after every test and releases the rest (temp dirs; closing `store` again must be harmless).
 */
export interface StoreFixture {
  store: BlobStore;
  cleanup: () => Promise<void>;
  /**
   * For persistent adapters: a fresh store over the same data. It closes nothing itself; the suite
   * closes the previous store first. When present, the close-and-reopen checks run.
   */
  reopen?: () => Promise<BlobStore>;
}

/**
 * What each file of the contract (put.ts, keys.ts, ...) gets: it registers its tests with
 * `describe` and `it`, and inside a test reaches that test's own fixture through `fx`.
 */
export interface StoreContext {
  /** The fixture of the running test, opened before it and cleaned up after it. */
  fx(): StoreFixture;
  /** Closes `store` and opens another over the same data; the suite closes it at the end. */
  closeAndReopen(store: BlobStore): Promise<BlobStore>;
}

/** The contract of the storage port, run against one adapter: every file of it, in order. */
export function describeStore(name: string, open: () => Promise<StoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fixture: StoreFixture | undefined;
    let reopened: BlobStore[] = [];

    beforeEach(async () => {
      fixture = await open();
      reopened = [];
    });

    afterEach(async () => {
      for (const store of reopened) await store.close();
      await fixture?.cleanup();
      fixture = undefined;
    });

    const context: StoreContext = {
      fx(): StoreFixture {
        if (!fixture) throw new Error('the fixture did not open');
        return fixture;
      },

      async closeAndReopen(store: BlobStore): Promise<BlobStore> {
        const reopen = context.fx().reopen;
        if (!reopen) throw new Error('the fixture has no reopen');
        await store.close();
        const next = await reopen();
        reopened.push(next);
        return next;
      },
    };

    testPutGetHead(context);
    testKeys(context);
    testBodies(context);
    testContentTypes(context);
    testRanges(context);
    testReplace(context);
    testDelete(context);
    testCookies(context);
    testLimits(context);
    testStatusAndSync(context);
    testClose(context);
    testConcurrency(context);
    testReopen(context);
    testReplicas(context);
  });
}
