import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ChunkAddress,
  type ChunkIndex,
  createChunkIndex,
  createDedupLookup,
  ZERO_CHUNK_HASH,
} from '../src/index.js';

const hex = (h: Uint8Array) => Buffer.from(h).toString('hex');

/** The obvious implementation: a Map filled in priority order, first entry wins, zero left out. */
function naiveLookup(memory: Uint8Array[], disk: Uint8Array[]): Map<string, ChunkAddress> {
  const map = new Map<string, ChunkAddress>();
  const zero = hex(ZERO_CHUNK_HASH);
  for (const [space, hashes] of [
    ['memory', memory],
    ['disk', disk],
  ] as const) {
    hashes.forEach((h, index) => {
      const key = hex(h);
      if (key !== zero && !map.has(key)) map.set(key, { space, index });
    });
  }
  return map;
}

function indexOf(kind: 'disk' | 'memory', hashes: Uint8Array[]): ChunkIndex {
  const bytes = new Uint8Array(hashes.length * 32);
  hashes.forEach((h, i) => {
    bytes.set(h, i * 32);
  });
  return createChunkIndex(kind, bytes);
}

/**
 * Hashes built from tiny pools of 8-byte pieces, so that many share their slot word and tag word
 * but differ later (exercising probe chains and tag false positives), and many are exact duplicates.
 */
const piece = fc.constantFrom(...[0, 1, 2].map((s) => new Uint8Array(8).fill(s * 85 + 1)));
const collidingHash = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(piece, piece, piece, piece)
      .map((parts) => Uint8Array.from(parts.flatMap((p) => [...p]))),
  },
  { weight: 1, arbitrary: fc.constant(ZERO_CHUNK_HASH) },
  { weight: 3, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }) },
);

describe('createDedupLookup', () => {
  it('agrees with a naive Map on colliding, duplicated and missing hashes', () => {
    fc.assert(
      fc.property(
        fc.array(collidingHash, { maxLength: 60 }),
        fc.array(collidingHash, { maxLength: 60 }),
        fc.array(collidingHash, { maxLength: 30 }),
        (memory, disk, extra) => {
          const lookup = createDedupLookup({
            memory: indexOf('memory', memory),
            disk: indexOf('disk', disk),
          });
          const oracle = naiveLookup(memory, disk);
          expect(lookup.size).toBe(oracle.size);
          for (const h of [...memory, ...disk, ...extra]) expect(lookup.find(h)).toEqual(oracle.get(hex(h)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('agrees with a naive Map on a larger random base with ~20 % duplicates', () => {
    const unique = Array.from({ length: 3000 }, () => new Uint8Array(randomBytes(32)));
    const pick = () => unique[Math.floor(Math.random() * unique.length)] as Uint8Array;
    const memory = Array.from({ length: 1000 }, (_, i) =>
      i % 5 === 0 ? pick() : new Uint8Array(randomBytes(32)),
    );
    const disk = Array.from({ length: 4000 }, (_, i) =>
      i % 5 === 0 ? pick() : new Uint8Array(randomBytes(32)),
    );
    const lookup = createDedupLookup({ memory: indexOf('memory', memory), disk: indexOf('disk', disk) });
    const oracle = naiveLookup(memory, disk);
    for (const h of [...memory, ...disk, ...unique]) expect(lookup.find(h)).toEqual(oracle.get(hex(h)));
  });

  it('prefers memory over disk, and the lowest index within a space', () => {
    const a = new Uint8Array(32).fill(0xaa);
    const b = new Uint8Array(32).fill(0xbb);
    const c = new Uint8Array(32).fill(0xcc);
    const lookup = createDedupLookup({
      memory: indexOf('memory', [c, a, b, a]),
      disk: indexOf('disk', [a, b, b, c, new Uint8Array(32).fill(0xdd), new Uint8Array(32).fill(0xdd)]),
    });
    expect(lookup.find(a)).toEqual({ space: 'memory', index: 1 });
    expect(lookup.find(b)).toEqual({ space: 'memory', index: 2 });
    expect(lookup.find(c)).toEqual({ space: 'memory', index: 0 });
    expect(lookup.find(new Uint8Array(32).fill(0xdd))).toEqual({ space: 'disk', index: 4 });
    expect(lookup.size).toBe(4);
  });

  it('misses unknown hashes and never holds the zero hash', () => {
    const known = new Uint8Array(randomBytes(32));
    const lookup = createDedupLookup({ disk: indexOf('disk', [ZERO_CHUNK_HASH, known, ZERO_CHUNK_HASH]) });
    expect(lookup.find(known)).toEqual({ space: 'disk', index: 1 });
    expect(lookup.find(ZERO_CHUNK_HASH)).toBeUndefined();
    const nearMiss = Uint8Array.from(known);
    nearMiss[31] = (nearMiss[31] as number) ^ 1;
    expect(lookup.find(nearMiss)).toBeUndefined();
    expect(lookup.size).toBe(1);
  });

  it('accepts query hashes at any byte offset, and indexes whose hashes are not word-aligned', () => {
    const hashes = Array.from({ length: 50 }, () => new Uint8Array(randomBytes(32)));
    const backing = new Uint8Array(1 + 50 * 32);
    hashes.forEach((h, i) => {
      backing.set(h, 1 + i * 32);
    });
    const lookup = createDedupLookup({ memory: createChunkIndex('memory', backing.subarray(1)) });
    const queries = new Uint8Array(3 + 32);
    for (const [i, h] of hashes.entries()) {
      queries.set(h, 3);
      expect(lookup.find(queries.subarray(3))).toEqual({ space: 'memory', index: i });
    }
  });

  it('finds every entry when the entry count sits at a power of two', () => {
    for (const total of [1, 2, 3, 4, 127, 128, 129, 256]) {
      const hashes = Array.from({ length: total }, () => new Uint8Array(randomBytes(32)));
      const half = total >> 1;
      const lookup = createDedupLookup({
        memory: indexOf('memory', hashes.slice(0, half)),
        disk: indexOf('disk', hashes.slice(half)),
      });
      expect(lookup.size).toBe(total);
      hashes.forEach((h, i) => {
        expect(lookup.find(h)).toEqual(
          i < half ? { space: 'memory', index: i } : { space: 'disk', index: i - half },
        );
      });
    }
  });

  it('works with one index or none, and counts its memory', () => {
    const empty = createDedupLookup({});
    expect(empty.find(new Uint8Array(32))).toBeUndefined();
    expect(empty.size).toBe(0);
    const memory = indexOf(
      'memory',
      Array.from({ length: 100 }, () => new Uint8Array(randomBytes(32))),
    );
    const lookup = createDedupLookup({ memory });
    expect(lookup.find(memory.hashAt(99))).toEqual({ space: 'memory', index: 99 });
    // 100 × 32 bytes of hashes + 256 uint32 slots (the power of two ≥ 1.5 × 100).
    expect(lookup.memoryBytes).toBe(3200 + 256 * 4);
  });

  it('rejects mislabelled indexes and wrong-sized hashes', () => {
    const disk = indexOf('disk', [new Uint8Array(32).fill(1)]);
    expect(() => createDedupLookup({ memory: disk })).toThrow(RangeError);
    expect(() => createDedupLookup({ disk }).find(new Uint8Array(31))).toThrow(RangeError);
  });
});
