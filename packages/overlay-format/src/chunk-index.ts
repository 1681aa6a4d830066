import { OverlayFormatError } from './errors.js';
import { OVERLAY_LIMITS } from './limits.js';
import type { ChunkSpace } from './records.js';
import { ByteReader, varintLength, writeVarint } from './varint.js';

/*
 * chunk-index.bin (docs/overlay-format.md, "Chunk index"):
 *   "CLIX" magic, byte version (2), then for memory, then disk: varint count, then runs until `count`
 *   chunks are listed — a run is consecutive chunk indexes in one segment: varint gap (first index −
 *   previous run's last index − 1, the first counts from −1), varint length − 1, varint segment number.
 * Runs, because chunks come in long stretches (a file's pages, a heap): 72,017 chunks took 144 KB as one
 * (gap, segment) pair each, 1.8 KB as 558 runs.
 */
const MAGIC = [0x43, 0x4c, 0x49, 0x58];
const VERSION = 2;

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

interface Run {
  first: number;
  length: number;
  segment: number;
}

function* runsOf({ indexes, segments }: SpaceIndex): Generator<Run> {
  let i = 0;
  while (i < indexes.length) {
    const first = indexes[i] as number;
    const segment = segments[i] as number;
    let length = 1;
    while (
      i + length < indexes.length &&
      indexes[i + length] === first + length &&
      segments[i + length] === segment
    )
      length++;
    yield { first, length, segment };
    i += length;
  }
}

export function encodeChunkIndex(spaces: Record<ChunkSpace, SpaceIndex>): Uint8Array {
  const fields: number[] = [];
  for (const space of [spaces.memory, spaces.disk]) {
    fields.push(space.indexes.length);
    let previous = -1;
    for (const run of runsOf(space)) {
      fields.push(run.first - previous - 1, run.length - 1, run.segment);
      previous = run.first + run.length - 1;
    }
  }
  const out = new Uint8Array(MAGIC.length + 1 + fields.reduce((n, f) => n + varintLength(f), 0));
  out.set(MAGIC);
  out[MAGIC.length] = VERSION;
  let at = MAGIC.length + 1;
  for (const field of fields) at = writeVarint(out, at, field);
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
    for (let listed = 0; listed < count; ) {
      const first = previous + reader.varint() + 1;
      const length = reader.varint() + 1;
      const segment = reader.varint();
      if (length > count - listed) throw reader.fail(`has a run past its ${count} ${space} chunks`);
      if (first + length > OVERLAY_LIMITS.maxChunks) throw reader.fail(`has a ${space} chunk beyond the cap`);
      if (segment >= expected.segments) throw reader.fail(`names segment ${segment} of ${expected.segments}`);
      for (let i = 0; i < length; i++) {
        indexes[listed + i] = first + i;
        segments[listed + i] = segment;
      }
      listed += length;
      previous = first + length - 1;
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
