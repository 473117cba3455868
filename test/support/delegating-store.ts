import type {
  BlobStore,
  ByteRange,
  FileInfo,
  FileRead,
  Key,
  PutInput,
  Readiness,
  ReplicaWriter,
  StoreCapabilities,
  StoreStatus,
  StoreTelemetry,
  SyncReport,
  VolumeAdmin,
} from '../../storage/index.ts';

/** The file operations of the port: what `DelegatingStore` forwards method by method. */
type PortMethods = Omit<BlobStore, 'capabilities'>;

/** Every call a `DelegatingStore` forwards: the port's, and its capabilities'. */
export type StoreMethod = keyof PortMethods | keyof VolumeAdmin | keyof ReplicaWriter;

/**
 * How a test changes a `DelegatingStore`: any method given here replaces the forwarding one (it
 * can still reach the wrapped store as `store.inner`); `volumes` and `replicas` do the same for
 * the capabilities' calls, and giving either offers that capability even if the inner store has
 * none. `before` runs ahead of every forwarded call (a throw there makes that call reject, as a
 * store's failure would).
 */
export type StoreOverrides = Partial<PortMethods> & {
  volumes?: Partial<VolumeAdmin>;
  replicas?: Partial<ReplicaWriter>;
  before?: (method: StoreMethod) => void;
};

/**
 * A `BlobStore` that forwards every call, with every argument, to `inner`: the one place tests
 * wrap a store to record, fail or otherwise change some calls and leave the rest alone. Override
 * a method through the constructor's `overrides`, or a port method in a subclass.
 *
 * Its capabilities are the inner store's (plus any an override gives), read once, here, as the
 * app reads them once: the wrapper offers what the store it wraps offers.
 */
export class DelegatingStore<S extends BlobStore = BlobStore> implements BlobStore {
  readonly inner: S;
  readonly capabilities: StoreCapabilities;
  readonly #overrides: StoreOverrides;

  constructor(inner: S, overrides: StoreOverrides = {}) {
    this.inner = inner;
    this.#overrides = overrides;
    const { volumes, replicas, telemetry } = inner.capabilities;
    const capabilities: {
      volumes?: VolumeAdmin;
      replicas?: ReplicaWriter;
      telemetry?: StoreTelemetry;
    } = {};
    // Events and counters are the inner store's own: nothing to forward call by call.
    if (telemetry) capabilities.telemetry = telemetry;
    if (volumes || overrides.volumes) {
      capabilities.volumes = {
        compact: (volume) =>
          this.#forward('compact', overrides.volumes?.compact, volumes?.compact.bind(volumes), [
            volume,
          ]),
        setVolumeReadOnly: (volume) =>
          this.#forward(
            'setVolumeReadOnly',
            overrides.volumes?.setVolumeReadOnly,
            volumes?.setVolumeReadOnly.bind(volumes),
            [volume],
          ),
      };
    }
    if (replicas || overrides.replicas) {
      capabilities.replicas = {
        putReplica: (key, cookie, input) =>
          this.#forward(
            'putReplica',
            overrides.replicas?.putReplica,
            replicas?.putReplica.bind(replicas),
            [key, cookie, input],
          ),
        listKeys: (after, limit) =>
          this.#forward(
            'listKeys',
            overrides.replicas?.listKeys,
            replicas?.listKeys.bind(replicas),
            [after, limit],
          ),
      };
    }
    this.capabilities = capabilities;
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

  async readiness(): Promise<Readiness> {
    if (this.#overrides.readiness) return this.#overrides.readiness();
    this.#before('readiness');
    return this.inner.readiness();
  }

  async close(): Promise<void> {
    if (this.#overrides.close) return this.#overrides.close();
    this.#before('close');
    return this.inner.close();
  }

  /** A capability's call: its override, or the inner store's call after `before`. */
  async #forward<A extends unknown[], R>(
    method: StoreMethod,
    override: ((...args: A) => Promise<R>) | undefined,
    inner: ((...args: A) => Promise<R>) | undefined,
    args: A,
  ): Promise<R> {
    if (override) return override(...args);
    if (!inner) throw new Error(`the wrapped store has no ${method}, and no override gives it`);
    this.#before(method);
    return inner(...args);
  }

  /** Runs the `before` hook ahead of a call that goes on to the inner store. */
  #before(method: StoreMethod): void {
    this.#overrides.before?.(method);
  }
}
