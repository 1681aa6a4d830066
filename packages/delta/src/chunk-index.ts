import { CHUNK_SIZE, HASH_SIZE } from './chunk.js';

/** Where a chunk lives in a base: its raw disk image or its memory (pages by flat page index). */
export type ChunkSpace = 'disk' | 'memory';

/** A chunk's address in a base: disk chunk `byteOffset / 4096`, or flat memory page index. */
export interface ChunkAddress {
  readonly space: ChunkSpace;
  readonly index: number;
}

/** The sha256 of every chunk of one space of a base, in chunk order. */
export interface ChunkIndex {
  readonly kind: ChunkSpace;
  readonly chunkSize: number;
  readonly count: number;
  /** Bytes the index covers: the disk image size (the last chunk may be short), or count × 4096. */
  readonly byteLength: number;
  /** HASH_SIZE × count bytes: chunk i's hash at [32 i, 32 i + 32). */
  readonly hashes: Uint8Array;
  /** Chunk i's hash: a view into `hashes`, not a copy. RangeError outside [0, count). */
  hashAt(i: number): Uint8Array;
}

/**
 * Wraps a hash array (HASH_SIZE bytes per chunk, in chunk order) as a ChunkIndex without copying.
 * `byteLength` defaults to count × CHUNK_SIZE; a disk image whose size is not a multiple of 4096
 * passes its real size.
 */
export function createChunkIndex(kind: ChunkSpace, hashes: Uint8Array, byteLength?: number): ChunkIndex {
  if (kind !== 'disk' && kind !== 'memory') throw new RangeError(`unknown chunk index kind "${kind}"`);
  if (hashes.length % HASH_SIZE !== 0) {
    throw new RangeError(
      `hash array of ${hashes.length} bytes is not a whole number of ${HASH_SIZE}-byte hashes`,
    );
  }
  const count = hashes.length / HASH_SIZE;
  const bytes = byteLength ?? count * CHUNK_SIZE;
  if (!Number.isSafeInteger(bytes) || Math.ceil(bytes / CHUNK_SIZE) !== count) {
    throw new RangeError(`byteLength ${bytes} does not span ${count} chunks of ${CHUNK_SIZE}`);
  }
  return {
    kind,
    chunkSize: CHUNK_SIZE,
    count,
    byteLength: bytes,
    hashes,
    hashAt(i) {
      if (!Number.isInteger(i) || i < 0 || i >= count)
        throw new RangeError(`chunk ${i} outside [0, ${count})`);
      return hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
    },
  };
}
