import type {
  BlobStore,
  ByteRange,
  CompactReport,
  FileInfo,
  FileRead,
  Key,
  PutInput,
  StoreStatus,
  SyncReport,
  VolumeStatus,
} from '../../storage/index.ts';

/** Every method of the storage port, the operator ones included. */
export type StoreMethod = keyof BlobStore;

/** The port with its operator methods required: what an override may stand in for. */
type AllMethods = Required<BlobStore>;

/**
 * How a test changes a `DelegatingStore`: any method given here replaces the forwarding one (it
 * can still reach the wrapped store as `store.inner`), and `before` runs ahead of every forwarded
 * call (a throw there makes that call reject, as a store's failure would).
 */
export type StoreOverrides = Partial<AllMethods> & {
  before?: (method: StoreMethod) => void;
};

/**
 * A `BlobStore` that forwards every call, with every argument, to `inner`: the one place tests
 * wrap a store to record, fail or otherwise change some calls and leave the rest alone. Override
 * a method through the constructor's `overrides` (a port method can also be overridden in a
 * subclass; the operator ones only through `overrides`).
 *
 * The operator methods (`compact`, `setVolumeReadOnly`) exist only when the inner store has them
 * or an override gives them, because that is how the admin routes tell a store with volumes from
 * one without (they answer 501 `not_supported` when the method is `undefined`).
 */
export class DelegatingStore<S extends BlobStore = BlobStore> implements BlobStore {
  readonly inner: S;
  readonly #overrides: StoreOverrides;
  declare compact?: (volume?: number) => Promise<CompactReport[]>;
  declare setVolumeReadOnly?: (volume: number) => Promise<VolumeStatus>;

  constructor(inner: S, overrides: StoreOverrides = {}) {
    this.inner = inner;
    this.#overrides = overrides;
    // Looked up once, here: a store has an operator method or not for its whole life.
    const compact = overrides.compact ?? inner.compact;
    if (compact) {
      this.compact = async (volume) => {
        if (overrides.compact) return overrides.compact(volume);
        this.#before('compact');
        return compact.call(inner, volume);
      };
    }
    const setVolumeReadOnly = overrides.setVolumeReadOnly ?? inner.setVolumeReadOnly;
    if (setVolumeReadOnly) {
      this.setVolumeReadOnly = async (volume) => {
        if (overrides.setVolumeReadOnly) return overrides.setVolumeReadOnly(volume);
        this.#before('setVolumeReadOnly');
        return setVolumeReadOnly.call(inner, volume);
      };
    }
  }

  async put(input: PutInput): Promise<FileInfo> {
    if (this.#overrides.put) return this.#overrides.put(input);
    this.#before('put');
    return this.inner.put(input);
  }

  async get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead> {
    if (this.#overrides.get) return this.#overrides.get(key, range, cookie);
    this.#before('get');
    return this.inner.get(key, range, cookie);
  }

  async head(key: Key, cookie?: number): Promise<FileInfo> {
    if (this.#overrides.head) return this.#overrides.head(key, cookie);
    this.#before('head');
    return this.inner.head(key, cookie);
  }

  async replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo> {
    if (this.#overrides.replace) return this.#overrides.replace(key, input, cookie);
    this.#before('replace');
    return this.inner.replace(key, input, cookie);
  }

  async delete(key: Key, cookie?: number): Promise<void> {
    if (this.#overrides.delete) return this.#overrides.delete(key, cookie);
    this.#before('delete');
    return this.inner.delete(key, cookie);
  }

  async sync(): Promise<SyncReport> {
    if (this.#overrides.sync) return this.#overrides.sync();
    this.#before('sync');
    return this.inner.sync();
  }

  async status(): Promise<StoreStatus> {
    if (this.#overrides.status) return this.#overrides.status();
    this.#before('status');
    return this.inner.status();
  }

  async close(): Promise<void> {
    if (this.#overrides.close) return this.#overrides.close();
    this.#before('close');
    return this.inner.close();
  }

  /** Runs the `before` hook ahead of a call that goes on to the inner store. */
  #before(method: StoreMethod): void {
    this.#overrides.before?.(method);
  }
}
