import type { SqlDatabase } from './sql.ts';

export interface Migration {
  /** 1, 2, ...: applied in this order, each once. */
  version: number;
  description: string;
  /** Statements run in order in the migrating transaction. */
  statements: readonly string[];
}

/**
 * The advisory lock every `migrate` takes for its transaction ("haystac\x01" as a big-endian
 * int8), so processes starting at once migrate one after the other.
 */
export const MIGRATION_LOCK = 0x6861797374616301n;

/** The Directory's schema (docs/CLUSTER-DESIGN.md, "The Directory"), oldest first. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'nodes, logical volumes, replicas, the key counter and leases, owed deletes',
    statements: [
      `CREATE TABLE haystack_nodes (
        id text PRIMARY KEY,
        url text NOT NULL,
        bytes_free bigint NOT NULL DEFAULT 0,
        registered_at timestamptz NOT NULL DEFAULT now(),
        last_heartbeat timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE haystack_volumes (
        id bigserial PRIMARY KEY,
        state text NOT NULL DEFAULT 'writable' CHECK (state IN ('writable', 'read-only')),
        reason_code text CHECK (reason_code IN ('replica-failed', 'full')),
        reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((state = 'writable') = (reason_code IS NULL))
      )`,
      `CREATE TABLE haystack_replicas (
        volume bigint NOT NULL REFERENCES haystack_volumes (id),
        node text NOT NULL REFERENCES haystack_nodes (id),
        state text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'catching-up')),
        bytes bigint NOT NULL DEFAULT 0,
        live_needles bigint NOT NULL DEFAULT 0,
        deleted_needles bigint NOT NULL DEFAULT 0,
        live_bytes bigint NOT NULL DEFAULT 0,
        garbage_bytes bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (volume, node)
      )`,
      'CREATE INDEX haystack_replicas_node ON haystack_replicas (node)',
      `CREATE TABLE haystack_key_counter (
        single boolean PRIMARY KEY DEFAULT true CHECK (single),
        next_key bigint NOT NULL CHECK (next_key >= 1)
      )`,
      'INSERT INTO haystack_key_counter (next_key) VALUES (1)',
      `CREATE TABLE haystack_key_ranges (
        first_key bigint PRIMARY KEY,
        last_key bigint NOT NULL,
        volume bigint NOT NULL REFERENCES haystack_volumes (id),
        gateway text NOT NULL,
        leased_at timestamptz NOT NULL DEFAULT now(),
        CHECK (first_key >= 1 AND last_key >= first_key)
      )`,
      `CREATE TABLE haystack_owed_deletes (
        id bigserial PRIMARY KEY,
        node text NOT NULL REFERENCES haystack_nodes (id),
        volume bigint NOT NULL REFERENCES haystack_volumes (id),
        key bigint NOT NULL,
        cookie bigint,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      // (node, id): a node's owed rows oldest first, and the catch-up's NOT EXISTS by node.
      'CREATE INDEX haystack_owed_deletes_node ON haystack_owed_deletes (node, id)',
      'CREATE INDEX haystack_owed_deletes_key ON haystack_owed_deletes (key)',
    ],
  },
];

/**
 * Brings the schema up to date: in one transaction under `MIGRATION_LOCK`, makes
 * `haystack_migrations` if missing and applies, in order, the migrations it does not list.
 * Idempotent, and safe when several processes start at once (the lock orders them; the later
 * ones find everything applied). Answers the versions it applied.
 */
export async function migrate(
  db: SqlDatabase,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK.toString()]);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS haystack_migrations (
        version int PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
    const rows = await tx.query<{ version: number }>('SELECT version FROM haystack_migrations');
    const applied = new Set(rows.map((row) => row.version));
    const done: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(migration.version)) continue;
      for (const statement of migration.statements) await tx.query(statement);
      await tx.query('INSERT INTO haystack_migrations (version) VALUES ($1)', [migration.version]);
      done.push(migration.version);
    }
    return done;
  });
}
