/** Bytes in a memory page and in a disk chunk. */
export const PAGE_SIZE = 4096;

/** Where a chunk lives: guest RAM (flat page index through the RAM block table) or the disk (chunk index). */
export type ChunkSpace = 'memory' | 'disk';

/** How one changed chunk is rebuilt. */
export type RecordEncoding =
  /** All zero bytes. */
  | { kind: 'zero' }
  /** A copy of base memory page `index`. */
  | { kind: 'base-memory'; index: number }
  /** A copy of base disk chunk `index`. */
  | { kind: 'base-disk'; index: number }
  /** A copy of an earlier chunk of this overlay. */
  | { kind: 'self'; space: ChunkSpace; index: number }
  /** A delta against the base chunk at the same (space, index). */
  | { kind: 'xor' | 'vcdiff'; delta: Uint8Array }
  /** The chunk itself, PAGE_SIZE bytes. */
  | { kind: 'raw'; data: Uint8Array };

export type RecordKind = RecordEncoding['kind'];

/** One changed chunk: the unit the writer takes and the reader yields. */
export interface OverlayRecord {
  space: ChunkSpace;
  index: number;
  encoding: RecordEncoding;
}

export const RECORD_KINDS = ['zero', 'base-memory', 'base-disk', 'self', 'xor', 'vcdiff', 'raw'] as const;
export const CHUNK_SPACES = ['memory', 'disk'] as const;

/** A delta longer than this is never worth storing (raw is PAGE_SIZE); the reader refuses longer ones. */
export const MAX_DELTA_BYTES = 2 * PAGE_SIZE;
