// Public face of @cloudlet/memory-snapshot: streaming reader and writer of QEMU's migration stream.
export { type CollectedMigrationStream, type CollectOptions, collectMigrationStream } from './collect.js';
export { MigrationStreamError, type MigrationStreamErrorCode } from './errors.js';
export { PAGE_SIZE } from './format.js';
export {
  buildLibvirtSaveHeader,
  isLibvirtSaveImage,
  LIBVIRT_SAVE_HEADER_BYTES,
  LIBVIRT_SAVE_MAGIC,
  type LibvirtSaveHeader,
  type LibvirtSaveHeaderInput,
  parseLibvirtSaveHeader,
  stripLibvirtSaveHeader,
} from './libvirt-save.js';
export { DEFAULT_LIMITS } from './limits.js';
export { type PageIndexer, pageIndexer } from './page-indexer.js';
export { readMigrationStream } from './reader.js';
export { withSharedRamBlock } from './shared-ram.js';
export type {
  MigrationStreamItem,
  MigrationStreamLimits,
  RamBlock,
  RamPage,
  StreamPrologue,
} from './types.js';
export { type MigrationStreamWriteInput, writeMigrationStream } from './writer.js';
