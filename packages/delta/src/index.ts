// Public face of @cloudlet/delta: chunk hashing, chunk indexes of a base's disk and memory, the
// dedup lookup over them, per-chunk delta codecs and the chunk encoder.
export { CHUNK_SIZE, HASH_SIZE, hashChunk, isZeroChunk, isZeroHash, ZERO_CHUNK_HASH } from './chunk.js';
export {
  type ChunkEncoder,
  type ChunkEncoderOptions,
  type ChunkEncoderStats,
  createChunkEncoder,
  type EncodedChunk,
  isUnchanged,
  type KindStats,
} from './chunk-encoder.js';
export {
  CHUNK_ENCODING_KINDS,
  type ChunkEncoding,
  type ChunkEncodingKind,
  type ChunkResolver,
  decodeChunk,
} from './chunk-encoding.js';
export {
  type ChunkAddress,
  type ChunkIndex,
  type ChunkSpace,
  createChunkIndex,
} from './chunk-index.js';
export { type ChunkIndexBuilder, createChunkIndexBuilder } from './chunk-index-builder.js';
export {
  CHUNK_INDEX_HEADER_SIZE,
  CHUNK_INDEX_MAGIC,
  CHUNK_INDEX_VERSION,
  readChunkIndex,
  writeChunkIndex,
} from './chunk-index-file.js';
export { createDedupLookup, type DedupLookup } from './dedup-lookup.js';
export {
  checkChunkPair,
  type DeltaCodec,
  DeltaCodecError,
  type DeltaCodecErrorCode,
  type DeltaCodecName,
} from './delta-codec.js';
export { createDeltaCodecs, type DeltaCodecs } from './delta-codecs.js';
export { ChunkIndexError, type ChunkIndexErrorCode } from './errors.js';
export {
  type IndexDiskImageOptions,
  type IndexProgress,
  indexDiskImage,
} from './index-disk-image.js';
export { createVcdiffCodec } from './vcdiff-codec.js';
export { xorCodec } from './xor-codec.js';
