import type { TestProject } from 'vitest/node';
import { startPostgres } from '../../scripts/support/postgres.ts';

/**
 * Vitest's global setup: one throw-away PostgreSQL for the whole run (about a second to start),
 * its URL provided to the tests, which each make databases of their own on it
 * (test/support/postgres.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres();
  project.provide('postgresUrl', server.url);
  return () => server.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}
