import type { Key } from '../../../storage/index.ts';
import { migrate } from './migrations.ts';
import { createPgDatabase, type PgDatabaseOptions } from './pg-database.ts';
import type { Sql, SqlDatabase } from './sql.ts';
import type {
  ClusterView,
  Directory,
  KeyLease,
  KeyPlace,
  NodeRow,
  OwedDelete,
  ReadOnlyReason,
  ReplicaRow,
  StoredReplicaState,
  VolumeId,
  VolumeRow,
} from './types.ts';

/** The highest key: keys are JS numbers, exact up to 2^53 - 1. */
export const MAX_KEY = Number.MAX_SAFE_INTEGER;

/**
 * The advisory lock `createVolume` takes for its transaction ("haystac\x02" as a big-endian
 * int8), so two gateways that find no writable volume at once make one, not two.
 */
export const CREATE_VOLUME_LOCK = 0x6861797374616302n;

/** `$n` (milliseconds) as an interval: the node timeout, compared with the database's clock. */
const timeoutInterval = (n: number) => `make_interval(secs => $${n}::float8 / 1000.0)`;
/** Whether node row `alias` heartbeat within the timeout in parameter `$n`. */
const isUp = (alias: string, n: number) =>
  `(now() - ${alias}.last_heartbeat <= ${timeoutInterval(n)})`;

const REPLICA_COLUMNS =
  'r.volume, r.node, r.state, r.bytes, r.live_needles, r.deleted_needles, r.live_bytes, r.garbage_bytes';

interface ReplicaRecord {
  volume: number;
  node: string;
  state: StoredReplicaState;
  bytes: number;
  live_needles: number;
  deleted_needles: number;
  live_bytes: number;
  garbage_bytes: number;
}

interface VolumeRecord {
  id: number;
  state: 'writable' | 'read-only';
  reason_code: ReadOnlyReason | null;
  reason: string | null;
}

const toReplica = (row: ReplicaRecord): ReplicaRow => ({
  volume: row.volume,
  node: row.node,
  state: row.state,
  bytes: row.bytes,
  liveNeedles: row.live_needles,
  deletedNeedles: row.deleted_needles,
  liveBytes: row.live_bytes,
  garbageBytes: row.garbage_bytes,
});

const toVolume = (row: VolumeRecord, replicas: ReplicaRow[]): VolumeRow => ({
  id: row.id,
  state: row.state,
  reasonCode: row.reason_code,
  reason: row.reason,
  replicas,
});

/** Volumes (all, or the one `id`), each with its replicas by node id, in one statement. */
async function readVolumes(sql: Sql, id?: VolumeId): Promise<VolumeRow[]> {
  const rows = await sql.query<VolumeRecord & { replicas: ReplicaRecord[] }>(
    `SELECT v.id, v.state, v.reason_code, v.reason,
       COALESCE((SELECT json_agg(r ORDER BY r.node) FROM haystack_replicas r WHERE r.volume = v.id),
                '[]'::json) AS replicas
     FROM haystack_volumes v ${id === undefined ? '' : 'WHERE v.id = $1'} ORDER BY v.id`,
    id === undefined ? [] : [id],
  );
  // json_agg renders bigint columns as JSON numbers: exact below 2^53, like every figure here.
  return rows.map((row) => toVolume(row, row.replicas.map(toReplica)));
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, not ${value}`);
  }
}

/**
 * The Directory over any `SqlDatabase` (PostgreSQL's SQL). Key locks hold a transaction of
 * `locks` each while their work runs, and that work queries `db`: so they are two pools, lest
 * held locks take every connection the work needs. It closes both on `close`.
 */
export function createDirectory(db: SqlDatabase, locks: SqlDatabase = db): Directory {
  return {
    // --- nodes ------------------------------------------------------------------------------
    async registerNode(id, url, bytesFree) {
      // One statement: the node's row first (the replicas' update reads it), then its replicas.
      const rows = await db.query<{ volume: number }>(
        `WITH node AS (
           INSERT INTO haystack_nodes AS n (id, url, bytes_free, registered_at, last_heartbeat)
           VALUES ($1, $2, $3, now(), now())
           ON CONFLICT (id) DO UPDATE
             SET url = EXCLUDED.url, bytes_free = EXCLUDED.bytes_free, last_heartbeat = now(),
                 registered_at = now()
           RETURNING n.id
         ), marked AS (
           UPDATE haystack_replicas SET state = 'catching-up'
           WHERE node = (SELECT id FROM node)
           RETURNING volume
         )
         SELECT volume FROM marked ORDER BY volume`,
        [id, url, bytesFree],
      );
      return rows.map((row) => row.volume);
    },

    async heartbeat(id, bytesFree, figures, nodeTimeoutMs) {
      return db.transaction(async (tx) => {
        // The row lock orders this node's heartbeats; `late` is judged on the stored one.
        const [node] = await tx.query<{ late: boolean }>(
          `SELECT now() - last_heartbeat > ${timeoutInterval(2)} AS late
           FROM haystack_nodes WHERE id = $1 FOR UPDATE`,
          [id, nodeTimeoutMs],
        );
        if (node === undefined) throw new Error(`node ${id} is not registered`);
        if (node.late) {
          await tx.query(`UPDATE haystack_replicas SET state = 'catching-up' WHERE node = $1`, [
            id,
          ]);
        }
        await tx.query(
          'UPDATE haystack_nodes SET last_heartbeat = now(), bytes_free = $2 WHERE id = $1',
          [id, bytesFree],
        );
        if (figures.size > 0) {
          const entries = [...figures];
          const columns = [
            entries.map(([volume]) => volume),
            entries.map(([, f]) => f.bytes),
            entries.map(([, f]) => f.liveNeedles),
            entries.map(([, f]) => f.deletedNeedles),
            entries.map(([, f]) => f.liveBytes),
            entries.map(([, f]) => f.garbageBytes),
          ];
          await tx.query(
            `UPDATE haystack_replicas r
             SET bytes = f.bytes, live_needles = f.live_needles,
                 deleted_needles = f.deleted_needles, live_bytes = f.live_bytes,
                 garbage_bytes = f.garbage_bytes
             FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                         $7::bigint[])
               AS f(volume, bytes, live_needles, deleted_needles, live_bytes, garbage_bytes)
             WHERE r.node = $1 AND r.volume = f.volume`,
            [id, ...columns],
          );
        }
        const rows = await tx.query<ReplicaRecord>(
          `SELECT ${REPLICA_COLUMNS} FROM haystack_replicas r WHERE r.node = $1 ORDER BY r.volume`,
          [id],
        );
        return rows.map(toReplica);
      });
    },

    async holdsReplica(node, volume) {
      const [row] = await db.query<{ holds: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM haystack_replicas WHERE node = $1 AND volume = $2) AS holds',
        [node, volume],
      );
      return row?.holds === true;
    },

    // --- the view ---------------------------------------------------------------------------
    async view(nodeTimeoutMs) {
      // Volumes first, then nodes: a replica's node row exists before the replica and is never
      // removed, so every node a replica names is in the list read after it.
      const volumes = await readVolumes(db);
      // The counter's one row, joined with every node: one round trip for both.
      const rows = await db.query<{
        next_key: number;
        id: string | null;
        url: string;
        up: boolean;
        last_heartbeat: Date;
        registered_at: Date;
        bytes_free: number;
      }>(
        `SELECT c.next_key, n.id, n.url, ${isUp('n', 1)} AS up, n.last_heartbeat, n.registered_at,
           n.bytes_free
         FROM haystack_key_counter c LEFT JOIN haystack_nodes n ON true ORDER BY n.id`,
        [nodeTimeoutMs],
      );
      const nodes: NodeRow[] = rows.flatMap((row) =>
        row.id === null
          ? []
          : [
              {
                id: row.id,
                url: row.url,
                up: row.up,
                lastHeartbeat: row.last_heartbeat,
                registeredAt: row.registered_at,
                bytesFree: row.bytes_free,
              },
            ],
      );
      const view: ClusterView = { nodes, volumes, nextKey: rows[0]?.next_key ?? 1 };
      return view;
    },

    // --- logical volumes --------------------------------------------------------------------
    async createVolume(replicas, nodeTimeoutMs, avoid = []) {
      positiveInteger('replicas', replicas);
      return db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [CREATE_VOLUME_LOCK.toString()]);
        const [writable] = await tx.query<{ id: number }>(
          `SELECT v.id FROM haystack_volumes v
           WHERE v.state = 'writable'
             AND (SELECT count(*) FROM haystack_replicas r WHERE r.volume = v.id) >= $2
             AND NOT EXISTS (
               SELECT 1 FROM haystack_replicas r JOIN haystack_nodes n ON n.id = r.node
               WHERE r.volume = v.id
                 AND (r.state <> 'ok' OR NOT ${isUp('n', 1)} OR r.node = ANY($3::text[])))
           ORDER BY v.id LIMIT 1`,
          [nodeTimeoutMs, replicas, [...avoid]],
        );
        if (writable !== undefined) return (await readVolumes(tx, writable.id))[0];

        const nodes = await tx.query<{ id: string }>(
          `SELECT n.id FROM haystack_nodes n
           WHERE ${isUp('n', 1)} AND NOT (n.id = ANY($3::text[]))
           ORDER BY n.bytes_free DESC, random() LIMIT $2`,
          [nodeTimeoutMs, replicas, [...avoid]],
        );
        if (nodes.length < replicas) return undefined;
        const [volume] = await tx.query<{ id: number }>(
          'INSERT INTO haystack_volumes DEFAULT VALUES RETURNING id',
        );
        if (volume === undefined) throw new Error('INSERT ... RETURNING answered no row');
        await tx.query(
          `INSERT INTO haystack_replicas (volume, node, state)
           SELECT $1, node, 'ok' FROM unnest($2::text[]) AS node`,
          [volume.id, nodes.map((node) => node.id)],
        );
        return (await readVolumes(tx, volume.id))[0];
      });
    },

    async markVolumeReadOnly(volume, code, reason) {
      // `full` is sticky: a replica's failure never turns it into one that may become writable.
      await db.query(
        `UPDATE haystack_volumes SET state = 'read-only', reason_code = $2, reason = $3
         WHERE id = $1 AND reason_code IS DISTINCT FROM 'full'`,
        [volume, code, reason],
      );
    },

    async markReplicaCatchingUp(volume, node) {
      await db.query(
        `UPDATE haystack_replicas SET state = 'catching-up' WHERE volume = $1 AND node = $2`,
        [volume, node],
      );
    },

    async finishCatchUp(volume, node) {
      // One statement: a delete owed by a gateway meanwhile is seen by it or comes after it (and
      // that gateway then marks the replica catching-up again if its delete does not land).
      await db.query(
        `UPDATE haystack_replicas SET state = 'ok'
         WHERE volume = $1 AND node = $2 AND state = 'catching-up'
           AND NOT EXISTS (
             SELECT 1 FROM haystack_owed_deletes d WHERE d.node = $2 AND d.volume = $1)`,
        [volume, node],
      );
      // Committed before this looks at the other replicas, so of two replicas finishing at once
      // the later one sees both ok (in one transaction each, neither would).
      const [row] = await db.query<{ state: StoredReplicaState }>(
        `WITH restored AS (
           UPDATE haystack_volumes SET state = 'writable', reason_code = NULL, reason = NULL
           WHERE id = $1 AND state = 'read-only' AND reason_code = 'replica-failed'
             AND NOT EXISTS (
               SELECT 1 FROM haystack_replicas WHERE volume = $1 AND state <> 'ok')
           RETURNING id
         )
         SELECT state FROM haystack_replicas WHERE volume = $1 AND node = $2`,
        [volume, node],
      );
      return row?.state === 'ok';
    },

    // --- keys -------------------------------------------------------------------------------
    async leaseKeys(volume, count, gateway) {
      positiveInteger('count', count);
      return db.transaction(async (tx) => {
        // The counter's row lock orders concurrent leases; the second one's UPDATE re-reads the
        // row the first committed.
        const [counter] = await tx.query<{ first: number }>(
          `UPDATE haystack_key_counter SET next_key = next_key + $1::bigint
           WHERE next_key + $1::bigint - 1 <= $2::bigint
           RETURNING next_key - $1::bigint AS first`,
          [count, MAX_KEY],
        );
        if (counter === undefined) {
          throw new RangeError(`no lease of ${count} keys is left below 2^53: the keys ran out`);
        }
        const lease: KeyLease = { first: counter.first, last: counter.first + count - 1, volume };
        await tx.query(
          `INSERT INTO haystack_key_ranges (first_key, last_key, volume, gateway)
           VALUES ($1, $2, $3, $4)`,
          [lease.first, lease.last, volume, gateway],
        );
        return lease;
      });
    },

    async placeKey(key: Key): Promise<KeyPlace> {
      const [row] = await db.query<{
        first_key: number | null;
        last_key: number | null;
        volume: number | null;
        owed_by: string[];
      }>(
        `SELECT r.first_key, r.last_key, r.volume,
           ARRAY(SELECT DISTINCT d.node FROM haystack_owed_deletes d WHERE d.key = $1) AS owed_by
         FROM (SELECT 1) AS one
         LEFT JOIN LATERAL (
           SELECT first_key, last_key, volume FROM haystack_key_ranges
           WHERE first_key <= $1::bigint ORDER BY first_key DESC LIMIT 1
         ) r ON r.last_key >= $1::bigint`,
        [key],
      );
      if (row === undefined) throw new Error('placeKey answered no row');
      const lease =
        row.first_key === null || row.last_key === null || row.volume === null
          ? undefined
          : { first: row.first_key, last: row.last_key, volume: row.volume };
      return { lease, owedBy: row.owed_by };
    },

    // --- the delete journal -----------------------------------------------------------------
    async oweDeletes(volume, key, nodes, cookie) {
      if (nodes.length === 0) return [];
      const rows = await db.query<{ id: number; node: string }>(
        `INSERT INTO haystack_owed_deletes (node, volume, key, cookie)
         SELECT u.node, $1, $2, $3 FROM unnest($4::text[]) WITH ORDINALITY AS u(node, ord)
         ORDER BY u.ord
         RETURNING id, node`,
        [volume, key, cookie, nodes],
      );
      // RETURNING's order is not promised: match rows to nodes (a node named twice gets its
      // rows in id order, and they are alike anyway).
      const byNode = new Map<string, number[]>();
      for (const row of [...rows].sort((a, b) => a.id - b.id)) {
        const ids = byNode.get(row.node) ?? [];
        ids.push(row.id);
        byNode.set(row.node, ids);
      }
      return nodes.map((node) => {
        const id = byNode.get(node)?.shift();
        if (id === undefined) throw new Error(`no owed delete was recorded for node ${node}`);
        return id;
      });
    },

    async settleDeletes(ids) {
      if (ids.length === 0) return;
      await db.query('DELETE FROM haystack_owed_deletes WHERE id = ANY($1::bigint[])', [ids]);
    },

    async deletesOwedBy(node, limit) {
      positiveInteger('limit', limit);
      const rows = await db.query<OwedDelete>(
        `SELECT id, node, volume, key, cookie FROM haystack_owed_deletes
         WHERE node = $1 ORDER BY id LIMIT $2`,
        [node, limit],
      );
      return rows;
    },

    withKeyLock(key, work) {
      return locks.transaction(async (tx) => {
        // Keys are below 2^53, under the migration and volume locks' constants.
        await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [key]);
        return work();
      });
    },

    async close() {
      await Promise.all([db.close(), locks === db ? undefined : locks.close()]);
    },
  };
}

/**
 * The Directory at a PostgreSQL URL: a pool, the schema migrated (under a lock, so processes
 * may start at once). Errors never show the URL's password.
 */
export async function openDirectory(
  url: string,
  options: PgDatabaseOptions = {},
): Promise<Directory> {
  const db = createPgDatabase(url, options);
  try {
    await migrate(db);
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  // Deletes and replaces in flight at once, each holding one lock connection.
  return createDirectory(db, createPgDatabase(url, { ...options, max: 32 }));
}
