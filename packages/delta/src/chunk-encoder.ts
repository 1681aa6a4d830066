import { CHUNK_SIZE, HASH_SIZE, hashChunk, isZeroChunk } from './chunk.js';
import { CHUNK_ENCODING_KINDS, type ChunkEncoding, type ChunkEncodingKind } from './chunk-encoding.js';
import type { ChunkAddress, ChunkIndex } from './chunk-index.js';
import type { DedupLookup } from './dedup-lookup.js';
import type { DeltaCodec } from './delta-codec.js';
import type { DeltaCodecs } from './delta-codecs.js';

/**
 * A delta is kept only if it is below this fraction of the chunk: a delta close to the chunk's
 * size saves little after segment compression and costs a base read plus a decode at synthesis.
 */
const DEFAULT_MAX_DELTA_FRACTION = 3 / 4;

/** Deltas up to this size are kept without that check: a page's own encoding is rarely this small. */
const SELF_CHECK_BYTES = 256;

export interface ChunkEncoderOptions {
  /** The base's memory and disk indexes (createDedupLookup). */
  readonly lookup: DedupLookup;
  /** Codecs to try for same-place deltas, all of them, smallest wins; omit or empty for none (`--delta none`). */
  readonly codecs?: Partial<DeltaCodecs> | readonly DeltaCodec[];
  /** Where to read the same-place base chunk when encode() is not given one (e.g. a base image reader). */
  readonly baseChunkAt?: (address: ChunkAddress) => Uint8Array | undefined;
  /** Keep a delta only if it is smaller than this fraction of the chunk. Default 3/4. */
  readonly maxDeltaFraction?: number;
  /**
   * Keep a delta over 256 bytes only if it is at least this fraction smaller than the same codec's encoding of
   * the chunk against a zero chunk, i.e. only if the base helped (default 0: off). A "delta" that does not use
   * the base is the chunk in another form — VCDIFF compresses a page against itself — and whether that beats
   * the segment compressor on the raw chunk depends on both: xz finds more in raw pages (server-app overlay
   * 5.71 → 4.59 MB with 0.25), zstd less in raw generated text than in its VCDIFF form, more in raw binaries.
   * encode() then stores the raw chunk; encodeWithAlternative() offers both, for a writer that chooses per
   * segment. Overlay creation sets 0.25 and uses the latter (docs/decisions.md).
   */
  readonly minBaseSaving?: number;
  /**
   * Look chunks up in the base and among earlier overlay chunks (default true). `false` skips both rules
   * (zero chunks are still elided): the benchmark's "dedup off" variant, to show dedup's share.
   */
  readonly dedup?: boolean;
}

export interface KindStats {
  /** Chunks encoded this way. */
  count: number;
  /** Payload bytes stored for them: delta or raw bytes; 0 for references and zero chunks. */
  bytes: number;
}

export interface ChunkEncoderStats {
  /** Chunks encoded. */
  readonly chunks: number;
  /** Bytes of chunk content given to encode(). */
  readonly inputBytes: number;
  /** Payload bytes of all encodings (before segment compression). */
  readonly payloadBytes: number;
  readonly byKind: Readonly<Record<ChunkEncodingKind, Readonly<KindStats>>>;
}

export interface ChunkEncoder {
  /**
   * The encoding of the chunk at `address` whose content is `data` (1..4096 bytes). Rules, first
   * match wins: zero → base memory → base disk → earlier chunk given to this encoder → smallest
   * same-place delta under the size limit → raw. Feed memory before disk so that an overlay
   * chunk present in both is stored once, in memory. `hash` saves rehashing when the caller has it.
   */
  encode(
    address: ChunkAddress,
    data: Uint8Array,
    sameplaceBase: Uint8Array | undefined,
    hash?: Uint8Array,
  ): ChunkEncoding;
  /**
   * As encode(), except that a delta failing the `minBaseSaving` check is kept, with the raw chunk as
   * `alternative`: for a writer that compresses a segment both ways and keeps the smaller (the segment
   * compressor, not a rule, decides which form it finds more in). Stats count `encoding`.
   */
  encodeWithAlternative(
    address: ChunkAddress,
    data: Uint8Array,
    sameplaceBase: Uint8Array | undefined,
    hash?: Uint8Array,
  ): EncodedChunk;
  stats(): ChunkEncoderStats;
}

export interface EncodedChunk {
  readonly encoding: ChunkEncoding;
  /** The raw chunk, when `encoding` is a delta that did not pass the `minBaseSaving` check. */
  readonly alternative?: ChunkEncoding;
}

function codecList(codecs: ChunkEncoderOptions['codecs']): readonly DeltaCodec[] {
  if (codecs === undefined) return [];
  if (Array.isArray(codecs)) return codecs as readonly DeltaCodec[];
  const { xor, vcdiff } = codecs as Partial<DeltaCodecs>;
  // XOR first: on a size tie the cheaper decode wins.
  return [xor, vcdiff].filter((c): c is DeltaCodec => c !== undefined);
}

export function createChunkEncoder(options: ChunkEncoderOptions): ChunkEncoder {
  const { lookup, baseChunkAt } = options;
  const codecs = codecList(options.codecs);
  const maxDeltaFraction = options.maxDeltaFraction ?? DEFAULT_MAX_DELTA_FRACTION;
  const minBaseSaving = options.minBaseSaving ?? 0;
  const dedup = options.dedup ?? true;
  /**
   * hash (as a 32-char latin1 string: one flat string, no hex doubling) → first overlay chunk with
   * that content. Only chunks not found in the base enter it: a later copy of a base chunk is found
   * in the base again.
   */
  const earlier = new Map<string, ChunkAddress>();
  const byKind = Object.fromEntries(CHUNK_ENCODING_KINDS.map((k) => [k, { count: 0, bytes: 0 }])) as Record<
    ChunkEncodingKind,
    KindStats
  >;
  let chunks = 0;
  let inputBytes = 0;

  const record = (encoding: ChunkEncoding, length: number): ChunkEncoding => {
    const s = byKind[encoding.kind];
    s.count++;
    s.bytes += payloadBytes(encoding);
    chunks++;
    inputBytes += length;
    return encoding;
  };

  /** The smallest delta under the size limit; with `checked`, only among those that pass usesBase. */
  function smallestDelta(data: Uint8Array, base: Uint8Array, checked: boolean) {
    if (base.length !== data.length) return undefined;
    let best: { encoding: ChunkEncoding & { delta: Uint8Array }; codec: DeltaCodec } | undefined;
    let bestSize = Math.ceil(data.length * maxDeltaFraction); // must be strictly smaller
    for (const codec of codecs) {
      const delta = codec.encode(data, base);
      if (delta.length < bestSize && (!checked || usesBase(codec, data, delta))) {
        best = { encoding: { kind: codec.name, delta }, codec };
        bestSize = delta.length;
      }
    }
    return best;
  }

  function usesBase(codec: DeltaCodec, data: Uint8Array, delta: Uint8Array): boolean {
    if (minBaseSaving <= 0 || delta.length <= SELF_CHECK_BYTES) return true;
    const alone = codec.encode(data, zeroChunk(data.length)).length;
    return delta.length <= alone * (1 - minBaseSaving);
  }

  /** The same-place delta, else raw; `offer`: a delta failing usesBase stays, the raw chunk its alternative. */
  function deltaOrRaw(
    address: ChunkAddress,
    data: Uint8Array,
    sameplaceBase: Uint8Array | undefined,
    offer: boolean,
  ): EncodedChunk {
    const raw: ChunkEncoding = { kind: 'raw', data };
    const base = sameplaceBase ?? baseChunkAt?.(address);
    if (base === undefined) return { encoding: raw };
    if (!offer || minBaseSaving <= 0) return { encoding: smallestDelta(data, base, true)?.encoding ?? raw };
    const best = smallestDelta(data, base, false);
    if (best === undefined) return { encoding: raw };
    return usesBase(best.codec, data, best.encoding.delta)
      ? { encoding: best.encoding }
      : { encoding: best.encoding, alternative: raw };
  }

  function encodeChunk(
    address: ChunkAddress,
    data: Uint8Array,
    sameplaceBase: Uint8Array | undefined,
    hash: Uint8Array | undefined,
    offer: boolean,
  ): EncodedChunk {
    if (data.length === 0 || data.length > CHUNK_SIZE) {
      throw new RangeError(`chunk of ${data.length} bytes: expected 1..${CHUNK_SIZE}`);
    }
    if (isZeroChunk(data)) return { encoding: { kind: 'zero' } };
    if (!dedup) return deltaOrRaw(address, data, sameplaceBase, offer);
    const digest = hash ?? hashChunk(data);
    if (digest.length !== HASH_SIZE) throw new RangeError(`hash of ${digest.length} bytes`);
    const inBase = lookup.find(digest);
    if (inBase !== undefined) {
      const kind = inBase.space === 'memory' ? 'base-memory' : 'base-disk';
      return { encoding: { kind, index: inBase.index } };
    }
    const key = Buffer.from(digest.buffer, digest.byteOffset, HASH_SIZE).toString('latin1');
    const first = earlier.get(key);
    if (first !== undefined) return { encoding: { kind: 'self', space: first.space, index: first.index } };
    earlier.set(key, { space: address.space, index: address.index });
    return deltaOrRaw(address, data, sameplaceBase, offer);
  }

  return {
    encode(address, data, sameplaceBase, hash) {
      return record(encodeChunk(address, data, sameplaceBase, hash, false).encoding, data.length);
    },
    encodeWithAlternative(address, data, sameplaceBase, hash) {
      const encoded = encodeChunk(address, data, sameplaceBase, hash, true);
      record(encoded.encoding, data.length);
      return encoded;
    },
    stats() {
      const kinds = Object.fromEntries(CHUNK_ENCODING_KINDS.map((k) => [k, { ...byKind[k] }])) as Record<
        ChunkEncodingKind,
        KindStats
      >;
      const payload = CHUNK_ENCODING_KINDS.reduce((sum, k) => sum + byKind[k].bytes, 0);
      return { chunks, inputBytes, payloadBytes: payload, byKind: kinds };
    },
  };
}

const ZERO_CHUNK = new Uint8Array(CHUNK_SIZE);
const zeroChunk = (length: number) => (length === CHUNK_SIZE ? ZERO_CHUNK : new Uint8Array(length));

function payloadBytes(encoding: ChunkEncoding): number {
  if (encoding.kind === 'raw') return encoding.data.length;
  if (encoding.kind === 'xor' || encoding.kind === 'vcdiff') return encoding.delta.length;
  return 0;
}

/**
 * True when the chunk at `index` still has the base's content there, so overlay creation drops it
 * before encoding. An index past the base's end (a grown disk) is never unchanged.
 */
export function isUnchanged(hash: Uint8Array, baseIndex: ChunkIndex, index: number): boolean {
  if (index < 0 || index >= baseIndex.count) return false;
  return Buffer.compare(baseIndex.hashAt(index), hash) === 0;
}
