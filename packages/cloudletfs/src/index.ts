// @cloudlet/cloudletfs: a FUSE view of a VM's images assembled from a base and overlay chunks as they arrive.
export { CHUNK_SIZE, type ChunkedImage } from './chunked-image.js';
export type { ImageFileStats } from './image-file.js';
export { type ChunkAccess, type CloudletFs, type MountOptions, mountCloudletFs } from './mount.js';
export { cloudletMountsUnder, removeStaleMounts } from './stale-mounts.js';
