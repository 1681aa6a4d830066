import { CHUNK_SIZE } from './chunk.js';
import type { ChunkSpace } from './chunk-index.js';
import type { DeltaCodecName } from './delta-codec.js';
import type { DeltaCodecs } from './delta-codecs.js';

/** How one overlay chunk is stored; the first matching rule of createChunkEncoder picks it. */
export type ChunkEncoding =
  | { readonly kind: 'zero' }
  /** Same content as base memory page `index`. */
  | { readonly kind: 'base-memory'; readonly index: number }
  /** Same content as base disk chunk `index`. */
  | { readonly kind: 'base-disk'; readonly index: number }
  /** Same content as an earlier chunk of this overlay. */
  | { readonly kind: 'self'; readonly space: ChunkSpace; readonly index: number }
  /** A delta against the base chunk at this chunk's own address. */
  | { readonly kind: DeltaCodecName; readonly delta: Uint8Array }
  | { readonly kind: 'raw'; readonly data: Uint8Array };

export type ChunkEncodingKind = ChunkEncoding['kind'];

/** Every kind, in rule order (for stats tables and exhaustive loops). */
export const CHUNK_ENCODING_KINDS: readonly ChunkEncodingKind[] = [
  'zero',
  'base-memory',
  'base-disk',
  'self',
  'xor',
  'vcdiff',
  'raw',
];

/** Where decodeChunk fetches the chunks an encoding refers to. */
export interface ChunkResolver {
  baseMemoryPage(index: number): Uint8Array;
  baseDiskChunk(index: number): Uint8Array;
  /** An earlier overlay chunk, already decoded. */
  overlayChunk(space: ChunkSpace, index: number): Uint8Array;
  /** The base chunk at the decoded chunk's own address (delta source). */
  sameplaceBase(): Uint8Array;
}

/**
 * The chunk content an encoding stands for. A zero chunk decodes to CHUNK_SIZE bytes; the caller
 * truncates a disk image's short last chunk. Referenced chunks are returned as the resolver gives
 * them (not copied).
 */
export function decodeChunk(
  encoding: ChunkEncoding,
  resolve: ChunkResolver,
  codecs: DeltaCodecs,
): Uint8Array {
  switch (encoding.kind) {
    case 'zero':
      return new Uint8Array(CHUNK_SIZE);
    case 'base-memory':
      return resolve.baseMemoryPage(encoding.index);
    case 'base-disk':
      return resolve.baseDiskChunk(encoding.index);
    case 'self':
      return resolve.overlayChunk(encoding.space, encoding.index);
    case 'xor':
    case 'vcdiff':
      return codecs[encoding.kind].decode(encoding.delta, resolve.sameplaceBase());
    case 'raw':
      return encoding.data;
  }
}
