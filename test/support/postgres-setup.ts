import { rm } from 'node:fs/promises';
import type { TestProject } from 'vitest/node';
import { bundleCli } from '../../scripts/support/cli-bundle.ts';
import { startPostgres } from '../../scripts/support/postgres.ts';

/**
 * Vitest's global setup: one throw-away PostgreSQL for the whole run (about a second to start),
 * its URL provided to the tests, which each make databases of their own on it
 * (test/support/postgres.ts); and the CLI bundled once, for the tests that start many processes.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [server, cliBundle] = await Promise.all([startPostgres(), bundleCli()]);
  project.provide('postgresUrl', server.url);
  // The cluster's tests start dozens of nodes: from a bundle, each starts in a fifth of the time.
  project.provide('cliBundle', cliBundle);
  return async () => {
    await server.stop();
    await rm(cliBundle, { force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    cliBundle: string;
  }
}
