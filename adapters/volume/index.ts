export type { CacheStats } from '../../storage/index.ts';
export {
  type RebuildProblem,
  type RebuildProgress,
  type RebuildReport,
  rebuildIndexes,
} from './rebuild.ts';
export {
  type VerifyNote,
  type VerifyProblem,
  type VerifyProgress,
  type VerifyReport,
  verifyDataDir,
} from './verify.ts';
export {
  type FsyncMode,
  openVolumeStore,
  VolumeStore,
  type VolumeStoreOptions,
} from './volume-store.ts';
