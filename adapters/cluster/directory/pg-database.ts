import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Sql, SqlDatabase } from './sql.ts';

/** PostgreSQL's type oid of `bigint` (`int8`). */
const INT8_OID = 20;

export interface PgDatabaseOptions {
  /** Connections at most (default 10). */
  max?: number;
  /** How long to wait for a connection before failing (default 10 s; 0 waits for ever). */
  connectionTimeoutMs?: number;
}

/**
 * `SqlDatabase` over a `pg.Pool`. `bigint` columns come back as JS numbers (keys, ids and byte
 * counts stay below 2^53), parsed by this pool only: the driver's global parsers are untouched.
 *
 * The connection string holds a password, so no error from here ever shows it: a failure to
 * connect rejects with an Error naming `user@host:port/db` only, and the driver's error (whose
 * message is scrubbed of the password, should it contain it) is its cause.
 */
export function createPgDatabase(url: string, options: PgDatabaseOptions = {}): SqlDatabase {
  const target = describeTarget(url);
  const secrets = secretsOf(url);
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
      application_name: 'haystack',
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID && format !== 'binary'
            ? parseInt8
            : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
      },
    });
  } catch (error) {
    throw connectionError(target, error, secrets);
  }
  // An idle client whose connection dies emits 'error' on the pool; the pool drops that client
  // and the next query opens another. Unhandled, the event would end the process.
  pool.on('error', () => {});
  let closed = false;

  async function connect(): Promise<pg.PoolClient> {
    if (closed) throw new Error(`the Directory's database (${target}) is closed`);
    try {
      return await pool.connect();
    } catch (error) {
      throw connectionError(target, error, secrets);
    }
  }

  const query = async <Row extends object>(
    client: pg.ClientBase,
    text: string,
    params?: readonly unknown[],
  ): Promise<Row[]> => {
    // A statement with parameters is prepared once per connection, under a name made from its
    // text: PostgreSQL then plans it once, not on every call (a gateway asks one for every read).
    const result =
      params === undefined
        ? await client.query<Row>(text)
        : await client.query<Row>({ name: statementName(text), text, values: [...params] });
    return result.rows;
  };

  return {
    async query<Row extends object = Record<string, unknown>>(
      text: string,
      params?: readonly unknown[],
    ): Promise<Row[]> {
      const client = await connect();
      let broken: Error | undefined;
      try {
        return await query<Row>(client, text, params);
      } catch (error) {
        // A statement error leaves the connection usable; a lost connection must not go back.
        if (!(error instanceof pg.DatabaseError)) broken = asError(error);
        throw error;
      } finally {
        client.release(broken);
      }
    },

    async transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T> {
      const client = await connect();
      // Destroyed rather than pooled when its state is unknown: a lost connection, or a failed
      // BEGIN, COMMIT or ROLLBACK that was not the server's answer.
      let broken = false;
      const control = async (statement: string) => {
        try {
          await client.query(statement);
        } catch (error) {
          if (!(error instanceof pg.DatabaseError)) broken = true;
          throw error;
        }
      };
      try {
        await control('BEGIN');
        const tx: Sql = {
          query: <Row extends object = Record<string, unknown>>(
            text: string,
            params?: readonly unknown[],
          ) => query<Row>(client, text, params),
        };
        let value: T;
        try {
          value = await work(tx);
        } catch (error) {
          try {
            await control('ROLLBACK');
          } catch {
            broken = true;
          }
          throw error;
        }
        await control('COMMIT');
        return value;
      } finally {
        client.release(broken);
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

function parseInt8(value: string): number {
  return Number(value);
}

/** `user@host:port/db` of a PostgreSQL URL: what errors may name. */
export function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    const user = decodeURIComponent(parsed.username) || '(default user)';
    const host = parsed.hostname || 'localhost';
    const port = parsed.port || '5432';
    const db = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || user;
    return `${user}@${host}:${port}/${db}`;
  } catch {
    return '(an unparsable Directory URL)';
  }
}

/** The strings no message may contain: the password (raw and decoded) and the whole URL. */
function secretsOf(url: string): string[] {
  const secrets = [url];
  try {
    const { password } = new URL(url);
    if (password !== '') secrets.push(password, decodeURIComponent(password));
  } catch {
    // unparsable: only the URL itself is known to be secret
  }
  return secrets.filter((secret) => secret !== '');
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('***');
  return out;
}

/**
 * The Error a failed connection rejects with: it names the target only. Its cause keeps the
 * driver's code and (scrubbed) message, but not the driver's error object itself, whose fields
 * this module does not control.
 */
function connectionError(target: string, error: unknown, secrets: readonly string[]): Error {
  const original = asError(error);
  const cause = new Error(scrub(original.message, secrets));
  cause.name = original.name;
  const code = (original as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(cause, { code });
  cause.stack = scrub(original.stack ?? cause.stack ?? '', secrets);
  const wrapped = new Error(`cannot connect to the Directory at ${target}: ${cause.message}`, {
    cause,
  });
  if (typeof code === 'string') Object.assign(wrapped, { code });
  return wrapped;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

const statementNames = new Map<string, string>();

/** A prepared statement's name: the same text, the same name (a digest of it). */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `haystack_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}
