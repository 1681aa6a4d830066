import { OverlayFormatError } from './errors.js';
import type { ChunkSpace } from './records.js';
import { ByteReader, varintLength, writeVarint } from './varint.js';

/*
 * chunk-index.bin (docs/overlay-format.md, "Chunk index"):
 *   "CLIX" magic, byte version (1), then for memory, then disk:
 *   varint count, then per chunk in increasing index order: varint gap (index - previous index - 1,
 *   the first counts from -1), varint segment number.
 */
const MAGIC = [0x43, 0x4c, 0x49, 0x58];
const VERSION = 1;

/** One space's sorted chunk indexes and the segment each is in. */
export interface SpaceIndex {
  indexes: Float64Array;
  segments: Uint32Array;
}

/** (space, chunk index) → segment number, for fetching one chunk on demand. */
export interface ChunkIndex {
  readonly memory: SpaceIndex;
  readonly disk: SpaceIndex;
  segmentOf(space: ChunkSpace, index: number): number | undefined;
}

export function encodeChunkIndex(spaces: Record<ChunkSpace, SpaceIndex>): Uint8Array {
  let length = MAGIC.length + 1;
  for (const { indexes, segments } of [spaces.memory, spaces.disk]) {
    length += varintLength(indexes.length);
    let previous = -1;
    for (let i = 0; i < indexes.length; i++) {
      const index = indexes[i] as number;
      length += varintLength(index - previous - 1) + varintLength(segments[i] as number);
      previous = index;
    }
  }
  const out = new Uint8Array(length);
  out.set(MAGIC);
  out[MAGIC.length] = VERSION;
  let at = MAGIC.length + 1;
  for (const { indexes, segments } of [spaces.memory, spaces.disk]) {
    at = writeVarint(out, at, indexes.length);
    let previous = -1;
    for (let i = 0; i < indexes.length; i++) {
      const index = indexes[i] as number;
      at = writeVarint(out, at, index - previous - 1);
      at = writeVarint(out, at, segments[i] as number);
      previous = index;
    }
  }
  return out;
}

/** Decodes and range-checks against the manifest's per-space counts and segment count. */
export function decodeChunkIndex(
  bytes: Uint8Array,
  expected: { memory: number; disk: number; segments: number },
): ChunkIndex {
  const reader = new ByteReader(bytes, 'chunk-index.bin');
  for (const b of MAGIC) if (reader.byte() !== b) throw reader.fail('does not start with "CLIX"');
  const version = reader.byte();
  if (version !== VERSION) throw reader.fail(`has version ${version}, this reader knows ${VERSION}`);
  const readSpace = (space: ChunkSpace): SpaceIndex => {
    const count = reader.varint();
    if (count !== expected[space])
      throw reader.fail(`lists ${count} ${space} chunks, the segments hold ${expected[space]}`);
    const indexes = new Float64Array(count);
    const segments = new Uint32Array(count);
    let previous = -1;
    for (let i = 0; i < count; i++) {
      previous += reader.varint() + 1;
      const segment = reader.varint();
      if (segment >= expected.segments) throw reader.fail(`names segment ${segment} of ${expected.segments}`);
      indexes[i] = previous;
      segments[i] = segment;
    }
    return { indexes, segments };
  };
  const memory = readSpace('memory');
  const disk = readSpace('disk');
  if (!reader.done) throw reader.fail('has trailing bytes');
  return chunkIndexOf({ memory, disk });
}

export function chunkIndexOf(spaces: Record<ChunkSpace, SpaceIndex>): ChunkIndex {
  return {
    ...spaces,
    segmentOf(space, index) {
      const { indexes, segments } = spaces[space];
      const at = sortedPosition(indexes, index);
      return at < 0 ? undefined : segments[at];
    },
  };
}

/** Sorts what the writer collected in record order; a chunk listed twice is the caller's mistake. */
export function sortedSpaceIndex(
  indexes: number[],
  segments: number[],
  space: ChunkSpace,
): SpaceIndex & { order: number[] } {
  /** order[sorted position] = position in record order. */
  const order = Array.from(indexes.keys()).sort((a, b) => (indexes[a] as number) - (indexes[b] as number));
  const out = { indexes: new Float64Array(order.length), segments: new Uint32Array(order.length), order };
  order.forEach((from, to) => {
    out.indexes[to] = indexes[from] as number;
    out.segments[to] = segments[from] as number;
    if (to > 0 && out.indexes[to] === out.indexes[to - 1])
      throw new OverlayFormatError('invalid-use', `${space} chunk ${indexes[from]} was added twice`);
  });
  return out;
}

/** Sorted position of `index` in `indexes`, or -1. */
export function sortedPosition(indexes: Float64Array, index: number): number {
  let lo = 0;
  let hi = indexes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = indexes[mid] as number;
    if (at === index) return mid;
    if (at < index) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
