import { inject } from 'vitest';
import { createDatabase } from '../../scripts/support/postgres.ts';

let made = 0;

/** A new, empty database on the run's PostgreSQL server (test/support/postgres-setup.ts): its URL. */
export function testDatabase(): Promise<string> {
  const name = `t${process.pid}_${Date.now().toString(36)}_${++made}`;
  return createDatabase(inject('postgresUrl'), name);
}

/** The run's server itself (its maintenance database). */
export const postgresServerUrl = (): string => inject('postgresUrl');
