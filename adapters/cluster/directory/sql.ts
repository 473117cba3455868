/**
 * The Directory's port to its database: a query and a transaction, nothing more. `pg-database.ts`
 * implements it over the `pg` driver; a test may implement it over anything that speaks
 * PostgreSQL's SQL.
 */
export interface Sql {
  /** Runs one statement with `$1`-style parameters; answers its rows. */
  query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<Row[]>;
}

export interface SqlDatabase extends Sql {
  /**
   * Runs `work` in one transaction (READ COMMITTED): committed when it resolves, rolled back when
   * it rejects (the rejection passes through).
   */
  transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T>;
  /** Ends every connection; later calls reject. */
  close(): Promise<void>;
}
