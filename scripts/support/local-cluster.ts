import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { crash, listening, type ServerRun, spawnCli, stop } from './cli-process.ts';
import { freePort } from './postgres.ts';

/**
 * A cluster of child processes on 127.0.0.1 over one Directory: store nodes (`haystack node`)
 * and gateways (`haystack gateway`), each started, stopped, killed (`kill -9`) and started again
 * by index. A node keeps its data folder and its port across restarts, so it is the same node
 * at the same URL. For the cluster's tests, its crash loop, its benchmark and `npm run cluster`.
 */
export interface LocalClusterOptions {
  /** The Directory's URL (a PostgreSQL database). */
  directory: string;
  /** Where node `i` keeps its data: `root/node-i`. */
  root: string;
  token: string;
  replicas: number;
  /** `--node-timeout` of every node and gateway, as typed: `2`, `500ms`. */
  nodeTimeout: string;
  /** More flags for every node (`--volume-size 8M`). */
  nodeFlags?: readonly string[];
  /** More flags for every gateway. */
  gatewayFlags?: readonly string[];
  /** Run this bundle of the CLI (scripts/support/cli-bundle.ts) rather than the sources. */
  bundle?: string;
  /**
   * Ports to use by member name (`node-3`, `gateway-0`) instead of free ones picked on first
   * start: the ports of an earlier run, or `0` for a gateway (its URL is then the one it prints).
   */
  ports?: Readonly<Record<string, number>>;
  /** Each child in a process group of its own (see `spawnCli`): a Ctrl+C reaches only us. */
  detached?: boolean;
}

export interface Member {
  readonly index: number;
  /** Its base URL (fixed for a node across restarts; a gateway's is known once it listens). */
  url: string;
  run: ServerRun | undefined;
}

export class LocalCluster {
  readonly options: LocalClusterOptions;
  readonly nodes: Member[] = [];
  readonly gateways: Member[] = [];
  readonly #ports = new Map<string, number>();

  constructor(options: LocalClusterOptions) {
    this.options = options;
    for (const [name, port] of Object.entries(options.ports ?? {})) this.#ports.set(name, port);
  }

  /** Node `i`'s data folder. */
  nodeDir(index: number): string {
    return path.join(this.options.root, `node-${index}`);
  }

  /** Starts node `index` (again), on the port it had before; resolves once it listens. */
  async startNode(index: number): Promise<Member> {
    const port = await this.#port(`node-${index}`);
    const dir = this.nodeDir(index);
    await mkdir(dir, { recursive: true });
    const run = await this.#listen([
      'node',
      '--data',
      dir,
      '--port',
      String(port),
      '--directory',
      this.options.directory,
      '--node-timeout',
      this.options.nodeTimeout,
      ...(this.options.nodeFlags ?? []),
    ]);
    const member = { index, url: run.url, run };
    this.nodes[index] = member;
    return member;
  }

  /**
   * Gateway `i`'s temp folder, `root/gateway-i-tmp` (its TMPDIR): where it spools large
   * uploads. A gateway killed with `kill -9` cannot remove its spool folder, so it is kept under
   * the cluster's root, removed with it, rather than left in the machine's temp dir.
   */
  gatewayTmpDir(index: number): string {
    return path.join(this.options.root, `gateway-${index}-tmp`);
  }

  /** Starts gateway `index` (again), on the port it had before. */
  async startGateway(index: number): Promise<Member> {
    const port = await this.#port(`gateway-${index}`);
    const tmp = this.gatewayTmpDir(index);
    await mkdir(tmp, { recursive: true });
    const run = await this.#listen(
      [
        'gateway',
        '--port',
        String(port),
        '--directory',
        this.options.directory,
        '--replicas',
        String(this.options.replicas),
        '--node-timeout',
        this.options.nodeTimeout,
        ...(this.options.gatewayFlags ?? []),
      ],
      { TMPDIR: tmp },
    );
    const member = { index, url: run.url, run };
    this.gateways[index] = member;
    return member;
  }

  /** `kill -9`: nothing of it runs after, nothing is flushed that was not already. */
  async kill(member: Member | undefined): Promise<void> {
    const run = member?.run;
    if (!run) return;
    member.run = undefined;
    await crash(run);
  }

  /** SIGTERM, the graceful stop. */
  async stop(member: Member | undefined): Promise<void> {
    const run = member?.run;
    if (!run) return;
    member.run = undefined;
    await stop(run);
  }

  /** Gateways first (no new writes), then nodes. */
  async stopAll(): Promise<void> {
    await Promise.all(this.gateways.map((g) => this.stop(g)));
    await Promise.all(this.nodes.map((n) => this.stop(n)));
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.gateways, ...this.nodes].map((m) => this.kill(m)));
  }

  async #listen(args: string[], env: Record<string, string> = {}): Promise<ServerRun> {
    // The token through the environment, as the README recommends (flags show in ps).
    const run = spawnCli(args, { HAYSTACK_CLUSTER_TOKEN: this.options.token, ...env }, [], {
      detached: this.options.detached ?? false,
      bundle: this.options.bundle,
    });
    try {
      return await listening(run);
    } catch (err) {
      await crash(run).catch(() => {});
      throw err;
    }
  }

  async #port(name: string): Promise<number> {
    let port = this.#ports.get(name);
    if (port === undefined) {
      port = await freePort();
      this.#ports.set(name, port);
    }
    return port;
  }
}
