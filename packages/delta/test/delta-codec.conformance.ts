// The contract every DeltaCodec must meet. Run it with runDeltaCodecConformance(name, () => codec).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DeltaCodec, DeltaCodecError } from '../src/index.js';

const SIZE = 4096;

/** A random page, with some structure (runs of repeated bytes) like real memory and disk pages. */
const arbitraryPage = fc.uint8Array({ minLength: SIZE, maxLength: SIZE });

/** Ways a customized chunk derives from its base chunk, as overlay creation sees them. */
const arbitraryMutation = fc.oneof(
  fc.record({
    kind: fc.constant('flips' as const),
    at: fc.array(fc.nat(SIZE - 1), { minLength: 1, maxLength: 40 }),
  }),
  fc.record({
    kind: fc.constant('run' as const),
    at: fc.nat(SIZE - 1),
    length: fc.integer({ min: 1, max: 512 }),
  }),
  fc.record({
    kind: fc.constant('shift' as const),
    at: fc.nat(SIZE - 1),
    by: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({ kind: fc.constant('identical' as const) }),
);

type Mutation = typeof arbitraryMutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(source: Uint8Array, m: Mutation, noise: Uint8Array): Uint8Array {
  const target = Uint8Array.from(source);
  switch (m.kind) {
    case 'flips':
      for (const [k, at] of m.at.entries()) target[at] = (target[at] as number) ^ ((noise[k] as number) | 1);
      break;
    case 'run':
      target.set(noise.subarray(0, Math.min(m.length, SIZE - m.at)), m.at);
      break;
    case 'shift':
      // Insert `by` new bytes at `at`: the tail moves right and its last `by` bytes fall off.
      target.set(source.subarray(m.at, SIZE - m.by), Math.min(SIZE, m.at + m.by));
      target.set(noise.subarray(0, Math.min(m.by, SIZE - m.at)), m.at);
      break;
    case 'identical':
      break;
  }
  return target;
}

function fill(byte: number): Uint8Array {
  return new Uint8Array(SIZE).fill(byte);
}

/** fast-check over 4 KiB pages is CPU-bound; the 2 cores are shared with other suites. */
const PROPERTY_TIMEOUT_MS = 60_000;

export function runDeltaCodecConformance(label: string, codec: () => DeltaCodec): void {
  describe(`DeltaCodec conformance: ${label}`, { timeout: PROPERTY_TIMEOUT_MS }, () => {
    const roundTrip = (target: Uint8Array, source: Uint8Array) => {
      const c = codec();
      const delta = c.encode(target, source);
      expect(delta).toBeInstanceOf(Uint8Array);
      expect(c.decode(delta, source)).toEqual(target);
      return delta;
    };

    it('round-trips random source and target', () => {
      fc.assert(
        fc.property(arbitraryPage, arbitraryPage, (source, target) => {
          roundTrip(target, source);
        }),
        { numRuns: 50 },
      );
    });

    it('round-trips targets derived from the source (flips, rewritten run, shifted tail, identical)', () => {
      fc.assert(
        fc.property(arbitraryPage, arbitraryMutation, arbitraryPage, (source, m, noise) => {
          roundTrip(mutate(source, m, noise), source);
        }),
        { numRuns: 200 },
      );
    });

    it('round-trips short chunks (a disk image tail)', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: SIZE }), arbitraryPage, arbitraryPage, (n, s, t) => {
          roundTrip(t.subarray(0, n), s.subarray(0, n));
        }),
        { numRuns: 50 },
      );
    });

    it('handles the edge cases: identical, all-zero source or target, all-different', () => {
      const page = Uint8Array.from({ length: SIZE }, (_, i) => (i * 37 + 11) & 0xff);
      const identical = roundTrip(page, Uint8Array.from(page));
      expect(identical.length).toBeLessThan(64);
      roundTrip(fill(0), page);
      roundTrip(page, fill(0));
      roundTrip(fill(0), fill(0));
      roundTrip(fill(0xff), fill(0));
      roundTrip(
        page.map((b) => b ^ 0x5a),
        page,
      );
    });

    it('makes small deltas for small in-place edits', () => {
      const source = Uint8Array.from({ length: SIZE }, (_, i) => (i * 7919) >>> 3);
      const target = Uint8Array.from(source);
      for (const at of [5, 900, 2001, 4095]) target[at] = (target[at] as number) ^ 0xff;
      expect(roundTrip(target, source).length).toBeLessThan(128);
    });

    it('refuses source/target of different lengths or outside 1..4096 bytes', () => {
      const c = codec();
      expect(() => c.encode(new Uint8Array(10), new Uint8Array(11))).toThrow(RangeError);
      expect(() => c.encode(new Uint8Array(0), new Uint8Array(0))).toThrow(RangeError);
      expect(() => c.encode(new Uint8Array(SIZE + 1), new Uint8Array(SIZE + 1))).toThrow(RangeError);
    });

    it('rejects malformed deltas with a typed error, never a wrong-length chunk', () => {
      const c = codec();
      const source = Uint8Array.from({ length: SIZE }, (_, i) => (i * 13) & 0xff);
      const target = Uint8Array.from(source);
      target.set([1, 2, 3, 4, 5, 6, 7, 8, 9], 4000);
      const delta = c.encode(target, source);
      const bad = [
        delta.subarray(0, delta.length - 1),
        delta.subarray(0, 1),
        Uint8Array.of(0xff, 0xff, 0xff, 0xff),
        Uint8Array.of(0x80),
        new Uint8Array(5 * SIZE).fill(0x41),
      ];
      for (const d of bad) expect(() => c.decode(d, source)).toThrow(DeltaCodecError);
      // Random garbage either decodes to a chunk of the right length or throws DeltaCodecError.
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (garbage) => {
          try {
            expect(c.decode(garbage, source).length).toBe(SIZE);
          } catch (e) {
            expect(e).toBeInstanceOf(DeltaCodecError);
          }
        }),
        { numRuns: 300 },
      );
    });

    it('decodes a truncation of a valid delta to an error or a chunk of the right length', () => {
      const c = codec();
      fc.assert(
        fc.property(arbitraryPage, arbitraryMutation, arbitraryPage, fc.nat(), (source, m, noise, cut) => {
          const delta = c.encode(mutate(source, m, noise), source);
          if (delta.length === 0) return;
          const truncated = delta.subarray(0, cut % delta.length);
          try {
            expect(c.decode(truncated, source).length).toBe(SIZE);
          } catch (e) {
            expect(e).toBeInstanceOf(DeltaCodecError);
          }
        }),
        { numRuns: 100 },
      );
    });
  });
}
