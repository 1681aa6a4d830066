// @cloudlet/overlay-format: the VM overlay container (zip of stored entries), its manifest, codecs, writer and reader.
export { bufferChunkSource, type ChunkSource, fileChunkSource } from './chunk-source.js';
export { segmentCodec } from './codecs/codec-by-name.js';
export type { SegmentCodec, SegmentCodecName } from './codecs/segment-codec.js';
export { xzCodec } from './codecs/xz-codec.js';
export { zstdCodec } from './codecs/zstd-codec.js';
export { describeOverlay, type OverlayDescription } from './describe-overlay.js';
export { OverlayFormatError, type OverlayFormatErrorCode } from './errors.js';
export { type HttpChunkSourceOptions, httpChunkSource } from './http-chunk-source.js';
export { OVERLAY_LIMITS } from './limits.js';
export {
  BlobInfo,
  OVERLAY_FORMAT_VERSION,
  OverlayManifest,
  type OverlayManifestFields,
  type OverlayStatistics,
  RamBlock,
  SegmentInfo,
} from './manifest.js';
export {
  type OverlaySource,
  type OverlaySourceKind,
  type OverlaySourceOptions,
  openOverlaySource,
} from './overlay-source.js';
export {
  type OpenOverlayOptions,
  type OverlayReader,
  type OverlaySegment,
  openOverlay,
  type SegmentsInOrderOptions,
} from './reader.js';
export {
  type ChunkSpace,
  MAX_DELTA_BYTES,
  type OverlayRecord,
  PAGE_SIZE,
  type RecordEncoding,
  type RecordKind,
} from './records.js';
export { type OverlayUpload, type OverlayUploadOptions, openOverlayUpload } from './upload.js';
export {
  createOverlayWriter,
  type OverlaySummary,
  type OverlayWriter,
  type OverlayWriterOptions,
} from './writer.js';
