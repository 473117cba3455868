/**
 * `npm run cluster -- --nodes 4 [--replicas 3] [--port 8080] [--data ./cluster-data]
 * [--node-timeout 10]`: a whole cluster on this machine, to try it. A PostgreSQL as the
 * Directory (files in DATA/postgres, fsync on), N store nodes (DATA/node-1 ... DATA/node-N) and
 * one gateway on --port, all on 127.0.0.1. Everything is kept in DATA: run it again and the same
 * cluster comes back, with its files, its nodes' ids and their ports (DATA/ports.json) and its
 * token (DATA/token, mode 0600).
 *
 * Ctrl+C or SIGTERM stops the gateway, then the nodes, then PostgreSQL, each gracefully; a
 * second one kills what is left. A start that fails midway kills what it had started.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { LocalCluster, type Member } from './support/local-cluster.ts';
import { createDatabase, type LocalPostgres, startPostgres } from './support/postgres.ts';
import { scriptArgs } from './support/script-args.ts';

const DATABASE = 'haystack';
// Its last line once the cluster serves, `haystack cluster ready: URL`, is what scripts wait for
// (test/e2e/cluster-script.test.ts).

const USAGE = `usage: npm run cluster -- --nodes N [--replicas R] [--port P] [--data DIR] [--node-timeout S]

  --nodes N          store nodes (default 3)
  --replicas R       replicas of each logical volume, at most N (default 3, or N if fewer)
  --port P           the gateway's port on 127.0.0.1 (default 8080; 0 picks a free one)
  --data DIR         where everything is kept (default ./cluster-data)
  --node-timeout S   seconds a node may miss heartbeats before it counts as down (default 10)`;

interface Args {
  nodes: number;
  replicas: number;
  port: number;
  data: string;
  nodeTimeout: string;
}

/** The ports of the last run, so that nodes keep their URLs. */
interface Ports {
  postgres?: number;
  nodes?: Record<string, number>;
}

const args = scriptArgs('cluster', `${USAGE}\n`);
// Typed here: TypeScript narrows after a call only through a declared `never`.
const fail: (message: string) => never = args.fail;
const { integer } = args;

function readArgs(argv: string[]): Args {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        nodes: { type: 'string', default: '3' },
        replicas: { type: 'string' },
        port: { type: 'string', default: '8080' },
        data: { type: 'string', default: './cluster-data' },
        'node-timeout': { type: 'string', default: '10' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const nodes = integer(values.nodes as string, 'nodes', { min: 1, max: 64 });
  const replicas =
    values.replicas === undefined
      ? Math.min(3, nodes)
      : integer(values.replicas as string, 'replicas', { min: 1, max: nodes });
  const nodeTimeout = values['node-timeout'] as string;
  if (!/^\d+(\.\d+)?(s|ms)?$/.test(nodeTimeout)) fail(`--node-timeout: not a time: ${nodeTimeout}`);
  return {
    nodes,
    replicas,
    port: integer(values.port as string, 'port', { min: 0, max: 65535 }),
    data: path.resolve(values.data as string),
    nodeTimeout,
  };
}

/** True when nothing listens on 127.0.0.1:port now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

async function readJson<T>(file: string, empty: T): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty;
    throw err;
  }
}

async function writeAtomically(file: string, text: string, mode = 0o644): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode });
  await rename(temp, file);
}

/** The cluster token, made on the first run: 48 hex digits, readable by this user only. */
async function loadOrMakeToken(file: string): Promise<string> {
  if (existsSync(file)) {
    const token = (await readFile(file, 'utf8')).trim();
    if (!/^[A-Za-z0-9._~+/-]{16,}$/.test(token)) throw new Error(`${file} holds no valid token`);
    await chmod(file, 0o600);
    return token;
  }
  const token = randomBytes(24).toString('hex');
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}

async function ensureDatabase(serverUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  let exists: boolean;
  try {
    const result = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    exists = result.rowCount === 1;
  } finally {
    await client.end();
  }
  if (!exists) return createDatabase(serverUrl, DATABASE);
  const url = new URL(serverUrl);
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

/**
 * Copies a child's log (its stdout) and anything on its stderr to our stderr, each line prefixed
 * with its name: our stdout is for the cluster's own lines.
 */
function forwardLog(member: Member, name: string): void {
  for (const stream of [member.run?.child.stdout, member.run?.child.stderr]) {
    let partial = '';
    stream?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) process.stderr.write(`[${name}] ${line}\n`);
    });
  }
  void member.run?.exited.then((exit) => {
    if (!stopping) {
      process.stderr.write(`[${name}] exited (${exit.signal ?? `code ${exit.code}`})\n`);
    }
  });
}

let stopping = false;

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  const data = args.data;
  await mkdir(data, { recursive: true, mode: 0o755 });
  const nodeDirs = (await readdir(data)).filter((name) => /^node-\d+$/.test(name));
  const extra = nodeDirs.filter((name) => Number(name.slice(5)) > args.nodes);
  if (extra.length > 0) {
    process.stderr.write(
      `note: ${extra.join(', ')} not started (--nodes ${args.nodes}): the Directory will show them down, and their logical volumes take no writes\n`,
    );
  }
  const portsFile = path.join(data, 'ports.json');
  const ports = await readJson<Ports>(portsFile, {});
  const token = await loadOrMakeToken(path.join(data, 'token'));

  // Kept ports where they are still free; new free ones (picked by the OS) otherwise.
  const reuse = async (port: number | undefined) =>
    port !== undefined && (await portIsFree(port)) ? port : undefined;

  let postgres: LocalPostgres | undefined;
  let postmaster: number | undefined;
  let postgresStopped = false;
  let cluster: LocalCluster | undefined;
  /** Kill -9 of every node and gateway, then PostgreSQL's fast shutdown. */
  const abort = async () => {
    stopping = true;
    await cluster?.killAll().catch(() => {});
    await postgres?.stop().catch(() => {});
    postgresStopped = true;
  };
  // Whatever ends this process, its children do not outlive it.
  process.once('exit', () => {
    for (const member of [...(cluster?.gateways ?? []), ...(cluster?.nodes ?? [])]) {
      if (member?.run?.running()) member.run.child.kill('SIGKILL');
    }
    if (postmaster !== undefined && !postgresStopped) {
      try {
        process.kill(postmaster, 'SIGQUIT'); // PostgreSQL's immediate shutdown
      } catch {
        // already gone
      }
    }
  });

  /** Gateways first (no new requests), then nodes (their last heartbeat), then PostgreSQL. */
  const stopInOrder = async () => {
    stopping = true;
    if (cluster) {
      const members = cluster;
      await Promise.all(members.gateways.map((g) => members.stop(g)));
      await Promise.all(members.nodes.map((n) => members.stop(n)));
    }
    await postgres?.stop();
    postgresStopped = true;
  };

  let ready = false;
  let signalled: NodeJS.Signals | undefined;
  let signalledAt = 0;
  const shutDown = (signal: NodeJS.Signals) => {
    process.stderr.write(`${signal}: stopping the gateway, then the nodes, then PostgreSQL\n`);
    void stopInOrder().then(
      () => {
        process.stdout.write('haystack cluster stopped\n');
        process.exit(0);
      },
      async (err: unknown) => {
        process.stderr.write(`stopping failed: ${(err as Error).stack ?? String(err)}\n`);
        await abort();
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    // A Ctrl+C under npm arrives twice at once: from the terminal and forwarded by npm.
    if (Date.now() - signalledAt < 1000) return;
    const first = signalledAt === 0;
    signalledAt = Date.now();
    if (!first) {
      process.stderr.write(`${signal} again: killing what is left\n`);
      void abort().finally(() => process.exit(1));
      return;
    }
    signalled = signal;
    // Before the gateway is up, the start-up sees it after its current step, and stops.
    if (ready) shutDown(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const pgLog = createWriteStream(path.join(data, 'postgres.log'), { flags: 'a' });
    const pgPort = await reuse(ports.postgres);
    await mkdir(path.join(data, 'postgres'), { recursive: true, mode: 0o700 });
    postgres = await startPostgres({
      dir: path.join(data, 'postgres'),
      fsync: true,
      detached: true,
      log: (line) => pgLog.write(`${line}\n`),
      ...(pgPort === undefined ? {} : { port: pgPort }),
    });
    postmaster = await postgres.postmasterPid();
    const directory = await ensureDatabase(postgres.url);

    const kept: Record<string, number> = { 'gateway-0': args.port };
    for (let i = 1; i <= args.nodes; i++) {
      const port = await reuse(ports.nodes?.[String(i)]);
      if (port !== undefined) kept[`node-${i}`] = port;
    }
    cluster = new LocalCluster({
      directory,
      root: data,
      token,
      replicas: args.replicas,
      nodeTimeout: args.nodeTimeout,
      ports: kept,
      detached: true,
    });
    const started: Member[] = [];
    for (let i = 1; i <= args.nodes && !signalled; i++) {
      const node = await cluster.startNode(i);
      forwardLog(node, `node-${i}`);
      started.push(node);
    }
    // Nodes not started this time keep their ports for the next run.
    const nodePorts: Record<string, number> = { ...ports.nodes };
    for (const node of started) nodePorts[String(node.index)] = Number(new URL(node.url).port);
    await writeAtomically(
      portsFile,
      `${JSON.stringify({ postgres: postgres.port, nodes: nodePorts }, null, 2)}\n`,
    );
    if (signalled) return shutDown(signalled);

    const gateway = await cluster.startGateway(0);
    forwardLog(gateway, 'gateway');
    ready = true;
    if (signalled) return shutDown(signalled);

    const url = gateway.url;
    const relative = path.relative(process.cwd(), path.join(data, 'token'));
    const tokenFile = relative.startsWith('..') ? path.join(data, 'token') : relative;
    const lines = [
      `haystack cluster: ${args.nodes} node${args.nodes === 1 ? '' : 's'}, R = ${args.replicas}, everything in ${data}`,
      `  Directory  ${directory}`,
      ...started.map(
        (node) => `  node ${node.index}     ${node.url}  (data ${cluster?.nodeDir(node.index)})`,
      ),
      `  gateway    ${url}`,
      `  token      ${tokenFile}  (HAYSTACK_CLUSTER_TOKEN=$(cat ${tokenFile}) for nodes and gateways of your own)`,
      '',
      'Try it:',
      `  curl -s -X POST --data-binary @photo.jpg -H 'Content-Type: image/jpeg' ${url}/file`,
      `  curl -s ${url}/file/1 -o copy.jpg`,
      `  curl -s ${url}/status`,
      '',
      'Ctrl+C stops the gateway, then the nodes, then PostgreSQL; run it again for the same cluster.',
      `haystack cluster ready: ${url}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } catch (err) {
    process.stderr.write(`the cluster did not start: ${(err as Error).message}\n`);
    await abort();
    process.exit(1);
  }
}

await main();
