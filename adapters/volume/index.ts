export {
  type RebuildProblem,
  type RebuildProgress,
  type RebuildReport,
  rebuildIndexes,
} from './rebuild.ts';
export {
  type FsyncMode,
  openVolumeStore,
  VolumeStore,
  type VolumeStoreOptions,
} from './volume-store.ts';
