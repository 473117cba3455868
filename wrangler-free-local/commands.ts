import { type Config, type OptionName, optionNames } from './options.ts';

/**
 * Every command of `haystack <command>`, once: the parser looks a command up here and runs that
 * entry's own `run`, so a word that is not in this table can only be a usage error. A new
 * command (the cluster's `node` and `gateway`) is one more entry.
 */
export interface CommandSpec<K extends OptionName> {
  name: string;
  /** One line in the usage, of at most 66 characters (80 columns). */
  summary: string;
  /** The options it takes; any other flag is a usage error, any other variable is ignored. */
  options: readonly K[];
  /** Of those, the ones without which it cannot run (a usage error names them). */
  required?: readonly K[];
  run(config: Pick<Config, K>): Promise<void>;
}

export type Command = CommandSpec<OptionName>;

/** Keeps `run`'s config to the options the command takes. */
const command = <const K extends OptionName>(spec: CommandSpec<K>): Command => spec;

// Each command's module loads only when it runs: help and usage errors stay fast, and work even
// where the store could not load.
const clusterOptions: readonly OptionName[] = [
  'directory',
  'clusterToken',
  'advertise',
  'replicas',
  'nodeTimeout',
];
const connectionOptions = [
  'maxConnections',
  'maxPipeline',
  'headersTimeout',
  'idleTimeout',
] as const satisfies readonly OptionName[];

export const commands: readonly Command[] = [
  command({
    name: 'start',
    summary: 'Serve the store over HTTP until Ctrl+C or SIGTERM.',
    options: optionNames.filter((name) => !clusterOptions.includes(name)),
    run: async (config) => (await import('./start.ts')).runStart(config),
  }),
  command({
    name: 'reload',
    summary: 'Rebuild every index (.idx) from the volumes (.dat); server stopped.',
    options: ['data'],
    run: async (config) => (await import('./reload.ts')).runReload(config),
  }),
  command({
    name: 'verify',
    summary: 'Check every needle and index, changing nothing; exit 1 on problems.',
    options: ['data'],
    run: async (config) => (await import('./verify.ts')).runVerify(config),
  }),
  command({
    name: 'compact',
    summary: 'Rewrite every volume without its deleted needles; server stopped.',
    options: ['data', 'fsync', 'volumeSize'],
    run: async (config) => (await import('./compact.ts')).runCompact(config),
  }),
  command({
    name: 'node',
    summary: 'Serve a cluster store node: replicas, for gateways only.',
    options: [
      'data',
      'port',
      'host',
      'advertise',
      'directory',
      'clusterToken',
      'nodeTimeout',
      'maxBody',
      'fsync',
      'volumeSize',
      'compactAt',
      'cacheSize',
      ...connectionOptions,
      'logLevel',
    ],
    required: ['directory', 'clusterToken'],
    run: async (config) => (await import('./node.ts')).runNode(config),
  }),
  command({
    name: 'gateway',
    summary: 'Serve the public API for a whole cluster; keeps no state.',
    options: [
      'port',
      'host',
      'directory',
      'clusterToken',
      'replicas',
      'nodeTimeout',
      'maxBody',
      'requireCookie',
      'inlineActive',
      ...connectionOptions,
      'logLevel',
    ],
    required: ['directory', 'clusterToken'],
    run: async (config) => (await import('./gateway.ts')).runGateway(config),
  }),
];

/** The command named exactly `name`, if there is one. */
export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name);
}

/** The options the command `name` takes (none for a name that is not a command). */
export function optionsOf(name: string): readonly OptionName[] {
  return findCommand(name)?.options ?? [];
}
