export { CREATE_VOLUME_LOCK, createDirectory, MAX_KEY, openDirectory } from './directory.ts';
export { MIGRATION_LOCK, MIGRATIONS, type Migration, migrate } from './migrations.ts';
export { createPgDatabase, describeTarget, type PgDatabaseOptions } from './pg-database.ts';
export type { Sql, SqlDatabase } from './sql.ts';
export type {
  ClusterView,
  Directory,
  KeyLease,
  KeyPlace,
  NodeId,
  NodeRow,
  OwedDelete,
  ReadOnlyReason,
  ReplicaFigures,
  ReplicaRow,
  StoredReplicaState,
  VolumeId,
  VolumeRow,
} from './types.ts';
