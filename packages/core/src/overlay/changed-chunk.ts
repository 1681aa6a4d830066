import type { ChunkIndex } from '@cloudlet/delta';

/** A chunk that differs from the base chunk at the same address. `data` null means all zero. */
export interface ChangedChunk {
  readonly index: number;
  readonly data: Uint8Array | null;
  readonly hash: Uint8Array;
}

/** Whether `hash` equals the base index's hash at `index` (then the chunk is unchanged and left out). */
export function sameAsBase(base: ChunkIndex, index: number, hash: Uint8Array): boolean {
  if (index >= base.count) return false;
  return Buffer.from(base.hashAt(index)).equals(hash);
}
