import { CHUNK_SIZE, HASH_SIZE, hashChunk, zeroHash } from './chunk.js';
import { type ChunkIndex, type ChunkSpace, createChunkIndex } from './chunk-index.js';

/**
 * Collects chunk hashes that arrive in any order (memory pages from a migration stream), then
 * yields a ChunkIndex. A chunk set twice keeps the later content: pre-copy migration resends
 * pages the guest dirtied, and the last copy is what the VM holds.
 */
export interface ChunkIndexBuilder {
  readonly kind: ChunkSpace;
  readonly count: number;
  /** Chunks set so far (each index counted once). */
  readonly filled: number;
  /** Hashes a full CHUNK_SIZE chunk into place `index`. */
  set(index: number, chunk: Uint8Array): void;
  /** Marks `index` as a zero chunk (migration streams send zero pages without their bytes). */
  setZero(index: number): void;
  /**
   * The finished index. Chunks never set are an error (a stream that ended early must not pass
   * for a complete base) unless `unsetAreZero` says they are zero. The builder is spent afterwards.
   */
  finish(options?: { unsetAreZero?: boolean }): ChunkIndex;
}

export function createChunkIndexBuilder(kind: ChunkSpace, count: number): ChunkIndexBuilder {
  if (kind !== 'disk' && kind !== 'memory') throw new RangeError(`unknown chunk index kind "${kind}"`);
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`chunk count ${count}`);
  let hashes: Uint8Array | undefined = new Uint8Array(count * HASH_SIZE);
  const isSet = new Uint8Array(count);
  let filled = 0;

  function place(index: number, digest: Uint8Array): void {
    if (hashes === undefined) throw new Error('chunk index builder already finished');
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new RangeError(`chunk ${index} outside [0, ${count})`);
    }
    hashes.set(digest, index * HASH_SIZE);
    if (isSet[index] === 0) {
      isSet[index] = 1;
      filled++;
    }
  }

  return {
    kind,
    count,
    get filled() {
      return filled;
    },
    set(index, chunk) {
      if (chunk.length !== CHUNK_SIZE)
        throw new RangeError(`chunk of ${chunk.length} bytes, expected ${CHUNK_SIZE}`);
      place(index, hashChunk(chunk));
    },
    setZero(index) {
      place(index, zeroHash);
    },
    finish(options) {
      if (hashes === undefined) throw new Error('chunk index builder already finished');
      if (filled < count) {
        if (options?.unsetAreZero !== true) {
          const missing: number[] = [];
          for (let i = 0; i < count && missing.length < 5; i++) if (isSet[i] === 0) missing.push(i);
          throw new Error(
            `${kind} index incomplete: ${count - filled} of ${count} chunks never set (first: ${missing.join(', ')})`,
          );
        }
        for (let i = 0; i < count; i++) if (isSet[i] === 0) hashes.set(zeroHash, i * HASH_SIZE);
      }
      const index = createChunkIndex(kind, hashes);
      hashes = undefined;
      return index;
    },
  };
}
