import { CHUNK_SIZE } from './chunk.js';

/** The per-chunk delta encodings an overlay may hold. */
export type DeltaCodecName = 'xor' | 'vcdiff';

/**
 * A delta codec for one chunk against the base chunk at the same place. Both sides have the same
 * length (1..CHUNK_SIZE; only a disk image's last chunk is short). Synchronous: it runs once per
 * changed chunk on the hot path, where a promise per chunk would cost more than the work.
 */
export interface DeltaCodec {
  readonly name: DeltaCodecName;
  /** A delta that turns `source` into `target`. RangeError if the lengths differ or are out of range. */
  encode(target: Uint8Array, source: Uint8Array): Uint8Array;
  /** `target` back from `delta` and `source`; DeltaCodecError if the delta is malformed. */
  decode(delta: Uint8Array, source: Uint8Array): Uint8Array;
}

/** Why a delta did not decode, coarse enough to branch on. */
export type DeltaCodecErrorCode =
  /** The delta ends in the middle of a field. */
  | 'truncated'
  /** A field is out of range: a run past the chunk end, an empty run, an oversized number. */
  | 'out-of-bounds'
  /** The decoder rejected the delta, or it decoded to the wrong length. */
  | 'invalid';

/** A delta that cannot be decoded: corrupt, truncated, or made for another source. */
export class DeltaCodecError extends Error {
  override readonly name = 'DeltaCodecError';
  constructor(
    readonly codec: DeltaCodecName,
    readonly code: DeltaCodecErrorCode,
    detail: string,
  ) {
    super(`${codec} delta ${code}: ${detail}`);
  }
}

/** Rejects a source/target pair no codec handles (programmer error, not bad data). */
export function checkChunkPair(target: Uint8Array, source: Uint8Array): void {
  if (target.length !== source.length) {
    throw new RangeError(`target of ${target.length} bytes vs source of ${source.length}: must be equal`);
  }
  checkChunkLength(source, 'source');
}

export function checkChunkLength(chunk: Uint8Array, what: string): void {
  if (chunk.length === 0 || chunk.length > CHUNK_SIZE) {
    throw new RangeError(`${what} of ${chunk.length} bytes: expected 1..${CHUNK_SIZE}`);
  }
}
