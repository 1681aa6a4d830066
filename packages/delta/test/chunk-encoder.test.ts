import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ChunkAddress,
  type ChunkEncoding,
  type ChunkResolver,
  type ChunkSpace,
  createChunkEncoder,
  createChunkIndex,
  createDedupLookup,
  createDeltaCodecs,
  type DedupLookup,
  type DeltaCodecs,
  decodeChunk,
  hashChunk,
  isUnchanged,
} from '../src/index.js';
import { patternChunk } from './helpers.js';

let codecs: DeltaCodecs;
beforeAll(async () => {
  codecs = await createDeltaCodecs();
});

const indexOf = (kind: ChunkSpace, chunks: Uint8Array[]) => {
  const hashes = new Uint8Array(32 * chunks.length);
  for (const [i, c] of chunks.entries()) hashes.set(hashChunk(c), 32 * i);
  return createChunkIndex(kind, hashes);
};

const randomPages = new Map<number, Uint8Array>();
/** A deterministic pseudo-random page per seed (xorshift32), cached: fast-check asks for many. */
function random(seed: number): Uint8Array {
  const cached = randomPages.get(seed);
  if (cached) return cached;
  const page = new Uint8Array(4096);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < page.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    page[i] = x & 0xff;
  }
  randomPages.set(seed, page);
  return page;
}

// A base: memory pages m0..m3, disk chunks d0..d3; m2 and d1 share content (memory wins).
const baseMemory = [random(1), random(2), patternChunk(7), random(4)];
const baseDisk = [random(11), patternChunk(7), random(13), new Uint8Array(4096)];
const lookup: DedupLookup = createDedupLookup({
  memory: indexOf('memory', baseMemory),
  disk: indexOf('disk', baseDisk),
});
const mem = (index: number): ChunkAddress => ({ space: 'memory', index });
const disk = (index: number): ChunkAddress => ({ space: 'disk', index });

function flipped(chunk: Uint8Array, ...at: number[]): Uint8Array {
  const out = Uint8Array.from(chunk);
  for (const i of at) out[i] = (out[i] as number) ^ 0xa5;
  return out;
}

describe('createChunkEncoder rules', () => {
  it('zero chunk → zero, even when the base has zero chunks', () => {
    const e = createChunkEncoder({ lookup, codecs });
    expect(e.encode(disk(0), new Uint8Array(4096), baseDisk[0])).toEqual({ kind: 'zero' });
  });

  it('content of a base memory page → base-memory (before disk, which holds it too)', () => {
    const e = createChunkEncoder({ lookup, codecs });
    expect(e.encode(disk(3), patternChunk(7), baseDisk[3])).toEqual({ kind: 'base-memory', index: 2 });
    expect(e.encode(mem(0), baseMemory[1] as Uint8Array, baseMemory[0])).toEqual({
      kind: 'base-memory',
      index: 1,
    });
  });

  it('content only on the base disk → base-disk', () => {
    const e = createChunkEncoder({ lookup, codecs });
    expect(e.encode(mem(1), baseDisk[2] as Uint8Array, baseMemory[1])).toEqual({
      kind: 'base-disk',
      index: 2,
    });
  });

  it('content of an earlier overlay chunk → self, across memory and disk', () => {
    const e = createChunkEncoder({ lookup, codecs });
    const fresh = random(99);
    expect(e.encode(mem(3), fresh, baseMemory[3]).kind).toBe('raw');
    expect(e.encode(disk(2), fresh, baseDisk[2])).toEqual({ kind: 'self', space: 'memory', index: 3 });
    expect(e.encode(mem(0), fresh, baseMemory[0])).toEqual({ kind: 'self', space: 'memory', index: 3 });
    const edited = flipped(baseDisk[0] as Uint8Array, 5);
    expect(e.encode(disk(0), edited, baseDisk[0]).kind).toBe('xor');
    expect(e.encode(mem(2), edited, baseMemory[2])).toEqual({ kind: 'self', space: 'disk', index: 0 });
  });

  it('dedup: false stores base and repeated content raw, still elides zeros and keeps deltas', () => {
    const e = createChunkEncoder({ lookup, codecs, dedup: false });
    const fresh = random(99);
    expect(e.encode(disk(3), patternChunk(7), undefined)).toEqual({ kind: 'raw', data: patternChunk(7) });
    expect(e.encode(mem(3), fresh, baseMemory[3]).kind).toBe('raw');
    expect(e.encode(disk(2), fresh, baseDisk[2]).kind).toBe('raw');
    expect(e.encode(disk(0), new Uint8Array(4096), baseDisk[0])).toEqual({ kind: 'zero' });
    expect(e.encode(disk(1), flipped(baseDisk[1] as Uint8Array, 9), baseDisk[1]).kind).toBe('xor');
    expect(e.stats().byKind['base-memory'].count + e.stats().byKind.self.count).toBe(0);
  });

  it('small in-place edit → xor delta against the same-place base', () => {
    const e = createChunkEncoder({ lookup, codecs });
    const enc = e.encode(disk(2), flipped(baseDisk[2] as Uint8Array, 1, 2000, 4000), baseDisk[2]);
    expect(enc.kind).toBe('xor');
    if (enc.kind === 'xor') expect(enc.delta.length).toBeLessThan(16);
  });

  it('shifted content → vcdiff (xor is too big)', () => {
    const e = createChunkEncoder({ lookup, codecs });
    const base = baseDisk[2] as Uint8Array;
    const shifted = new Uint8Array(4096);
    shifted.set(base.subarray(0, 100));
    shifted.set([1, 2, 3, 4, 5, 6, 7, 8], 100);
    shifted.set(base.subarray(100, 4088), 108);
    expect(e.encode(disk(2), shifted, base).kind).toBe('vcdiff');
  });

  it('unrelated content, no same-place base, or no codecs → raw', () => {
    const e = createChunkEncoder({ lookup, codecs });
    expect(e.encode(disk(1), random(500), baseDisk[1]).kind).toBe('raw');
    expect(e.encode(disk(9), random(501), undefined).kind).toBe('raw');
    const none = createChunkEncoder({ lookup });
    expect(none.encode(disk(2), flipped(baseDisk[2] as Uint8Array, 9), baseDisk[2]).kind).toBe('raw');
  });

  it('a delta must be under the margin (3/4 of the chunk by default)', () => {
    const base = baseDisk[2] as Uint8Array;
    const half = Uint8Array.from(base);
    half.set(random(77).subarray(0, 2000), 0); // xor ≈ 2003 bytes, vcdiff ≈ 2010
    expect(createChunkEncoder({ lookup, codecs }).encode(disk(2), half, base).kind).toBe('xor');
    expect(
      createChunkEncoder({ lookup, codecs, maxDeltaFraction: 0.4 }).encode(disk(2), half, base).kind,
    ).toBe('raw');
  });

  it('minBaseSaving: new content over an unrelated base page → raw, not a "delta" that is the page in another form', () => {
    const text = new TextEncoder().encode(
      Array.from({ length: 400 }, (_, i) => `entry-${i}-${(i * 7919) % 100_003}`).join('\n'),
    );
    const page = new Uint8Array(4096);
    page.set(text.subarray(0, 4096));
    // VCDIFF copies from the page itself: ~1 KiB "against" random bytes it never uses.
    expect(codecs.vcdiff.encode(page, random(600)).length).toBeLessThan(3072);
    expect(createChunkEncoder({ lookup, codecs }).encode(disk(9), page, random(600)).kind).toBe('vcdiff');
    const strict = createChunkEncoder({ lookup, codecs, minBaseSaving: 0.25 });
    expect(strict.encode(disk(9), page, random(600)).kind).toBe('raw');
    // XOR over a base page with unrelated bytes where the new ones are: all of them, scrambled.
    const halfText = new Uint8Array(4096);
    halfText.set(text.subarray(0, 2048));
    const halfRandom = new Uint8Array(4096);
    halfRandom.set(random(601).subarray(0, 1024));
    expect(codecs.xor.encode(halfText, halfRandom).length).toBeLessThan(3072);
    const xorOnly = createChunkEncoder({ lookup, codecs: [codecs.xor], minBaseSaving: 0.25 });
    expect(xorOnly.encode(disk(9), halfText, halfRandom).kind).toBe('raw');
    // The same page edited in place stays a delta.
    expect(xorOnly.encode(disk(9), flipped(halfText, 5, 900), halfText).kind).toBe('xor');
  });

  it('encodeWithAlternative: a delta that does not use the base keeps the raw chunk beside it', () => {
    const text = new TextEncoder().encode(Array.from({ length: 500 }, (_, i) => `line ${i * 31}`).join('\n'));
    const page = new Uint8Array(4096);
    page.set(text.subarray(0, 4096));
    const offering = createChunkEncoder({ lookup, codecs, minBaseSaving: 0.25 });
    const weak = offering.encodeWithAlternative(disk(9), page, random(602));
    expect(weak.encoding.kind).toBe('vcdiff');
    expect(weak.alternative).toEqual({ kind: 'raw', data: page });
    // A real edit of the base page: the delta alone.
    const edited = offering.encodeWithAlternative(disk(10), flipped(page, 7, 100), page);
    expect(edited.encoding.kind).toBe('xor');
    expect(edited.alternative).toBeUndefined();
    // Dedup and zero chunks are never offered twice; the stats count the primary encodings.
    expect(offering.encodeWithAlternative(disk(11), new Uint8Array(4096), page)).toEqual({
      encoding: { kind: 'zero' },
    });
    expect(offering.stats().byKind).toMatchObject({
      vcdiff: { count: 1 },
      xor: { count: 1 },
      zero: { count: 1 },
    });
    // Without minBaseSaving nothing is weak: encodeWithAlternative is encode.
    const plain = createChunkEncoder({ lookup, codecs }).encodeWithAlternative(disk(9), page, random(602));
    expect(plain.alternative).toBeUndefined();
  });

  it('reads the same-place base through baseChunkAt when not given one', () => {
    const asked: ChunkAddress[] = [];
    const e = createChunkEncoder({
      lookup,
      codecs,
      baseChunkAt: (a) => {
        asked.push(a);
        return a.space === 'disk' ? baseDisk[a.index] : baseMemory[a.index];
      },
    });
    expect(e.encode(mem(0), flipped(baseMemory[0] as Uint8Array, 3), undefined).kind).toBe('xor');
    expect(asked).toEqual([mem(0)]);
  });

  it('uses a caller-supplied hash instead of rehashing', () => {
    const e = createChunkEncoder({ lookup, codecs });
    // A wrong hash that names base disk chunk 2 proves the supplied one is used.
    expect(e.encode(mem(0), random(1234), undefined, hashChunk(baseDisk[2] as Uint8Array))).toEqual({
      kind: 'base-disk',
      index: 2,
    });
  });

  it('counts chunks and payload bytes per kind', () => {
    const e = createChunkEncoder({ lookup, codecs });
    e.encode(mem(0), new Uint8Array(4096), baseMemory[0]);
    e.encode(mem(1), patternChunk(7), baseMemory[1]);
    e.encode(mem(2), baseDisk[0] as Uint8Array, baseMemory[2]);
    const fresh = random(4242);
    e.encode(mem(3), fresh, baseMemory[3]);
    e.encode(disk(0), fresh, baseDisk[0]);
    const x = e.encode(disk(2), flipped(baseDisk[2] as Uint8Array, 8), baseDisk[2]);
    const s = e.stats();
    expect(s.chunks).toBe(6);
    expect(s.inputBytes).toBe(6 * 4096);
    expect(s.byKind.zero).toEqual({ count: 1, bytes: 0 });
    expect(s.byKind['base-memory']).toEqual({ count: 1, bytes: 0 });
    expect(s.byKind['base-disk']).toEqual({ count: 1, bytes: 0 });
    expect(s.byKind.self).toEqual({ count: 1, bytes: 0 });
    expect(s.byKind.raw).toEqual({ count: 1, bytes: 4096 });
    expect(s.byKind.xor).toEqual({ count: 1, bytes: x.kind === 'xor' ? x.delta.length : -1 });
    expect(s.byKind.vcdiff).toEqual({ count: 0, bytes: 0 });
    expect(s.payloadBytes).toBe(4096 + s.byKind.xor.bytes);
    // stats() is a snapshot, not a live view.
    e.encode(disk(3), random(5), baseDisk[3]);
    expect(s.byKind.raw.count).toBe(1);
  });

  it('refuses empty and oversized chunks', () => {
    const e = createChunkEncoder({ lookup, codecs });
    expect(() => e.encode(mem(0), new Uint8Array(0), undefined)).toThrow(RangeError);
    expect(() => e.encode(mem(0), new Uint8Array(4097), undefined)).toThrow(RangeError);
  });
});

describe('isUnchanged', () => {
  const index = indexOf('disk', baseDisk);
  it('compares with the base hash at the same index', () => {
    expect(isUnchanged(hashChunk(baseDisk[1] as Uint8Array), index, 1)).toBe(true);
    expect(isUnchanged(hashChunk(baseDisk[1] as Uint8Array), index, 2)).toBe(false);
    expect(isUnchanged(hashChunk(new Uint8Array(4096)), index, 3)).toBe(true);
  });
  it('is false past the base end (a grown disk)', () => {
    expect(isUnchanged(hashChunk(baseDisk[1] as Uint8Array), index, 4)).toBe(false);
    expect(isUnchanged(hashChunk(baseDisk[1] as Uint8Array), index, -1)).toBe(false);
  });
});

describe('encode → decodeChunk round trips', () => {
  const chunkMutation = fc.oneof(
    fc.constant('zero' as const),
    fc.constant('copy-base-memory' as const),
    fc.constant('copy-base-disk' as const),
    fc.constant('repeat-earlier' as const),
    fc.constant('flip' as const),
    fc.constant('shift' as const),
    fc.constant('random' as const),
  );

  it('rebuilds every chunk of a random overlay (memory first, then disk)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(chunkMutation, fc.nat(), fc.nat()), { minLength: 1, maxLength: 40 }),
        (plan) => {
          const e = createChunkEncoder({ lookup, codecs });
          const overlay = new Map<string, Uint8Array>();
          const given: { address: ChunkAddress; data: Uint8Array; encoding: ChunkEncoding }[] = [];
          plan.forEach(([m, a, b], k) => {
            const address: ChunkAddress = k < plan.length / 2 ? mem(k % 4) : disk(k % 4);
            if (overlay.has(`${address.space}:${address.index}`)) return;
            const base = (address.space === 'memory' ? baseMemory : baseDisk)[address.index] as Uint8Array;
            let data: Uint8Array;
            if (m === 'zero') data = new Uint8Array(4096);
            else if (m === 'copy-base-memory') data = baseMemory[a % 4] as Uint8Array;
            else if (m === 'copy-base-disk') data = baseDisk[a % 4] as Uint8Array;
            else if (m === 'repeat-earlier' && given.length > 0)
              data = (given[a % given.length] as { data: Uint8Array }).data;
            else if (m === 'flip') data = flipped(base, a % 4096, b % 4096);
            else if (m === 'shift') {
              data = new Uint8Array(4096);
              const at = a % 4000;
              data.set(base.subarray(0, at));
              data.set(base.subarray(at, 4096 - 5), at + 5);
            } else data = random((a % 64) + 1000);
            const encoding = e.encode(address, data, base);
            given.push({ address, data, encoding });
            overlay.set(`${address.space}:${address.index}`, data);
          });
          const decoded = new Map<string, Uint8Array>();
          for (const { address, data, encoding } of given) {
            const resolve: ChunkResolver = {
              baseMemoryPage: (i) => baseMemory[i] as Uint8Array,
              baseDiskChunk: (i) => baseDisk[i] as Uint8Array,
              overlayChunk: (space, i) => {
                const c = decoded.get(`${space}:${i}`);
                if (c === undefined) throw new Error(`self reference to ${space}:${i} before it was decoded`);
                return c;
              },
              sameplaceBase: () =>
                (address.space === 'memory' ? baseMemory : baseDisk)[address.index] as Uint8Array,
            };
            const out = decodeChunk(encoding, resolve, codecs);
            expect(out).toEqual(data);
            decoded.set(`${address.space}:${address.index}`, out);
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);
});
