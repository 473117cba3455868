import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { testDatabase } from '../support/postgres.ts';

describe('the test PostgreSQL', () => {
  it('gives each test an empty database of its own', async () => {
    const [a, b] = await Promise.all([testDatabase(), testDatabase()]);
    expect(a).not.toBe(b);
    const client = new pg.Client({ connectionString: a });
    await client.connect();
    try {
      const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
      expect(Number.parseInt(rows[0]?.server_version ?? '0', 10)).toBeGreaterThanOrEqual(14);
      const tables = await client.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'");
      expect(tables.rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });
});
