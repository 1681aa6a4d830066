import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChunkIndexBuilder, ZERO_CHUNK_HASH } from '../src/index.js';
import { patternChunk, sha256 } from './helpers.js';

describe('createChunkIndexBuilder', () => {
  it('places hashes by index whatever the arrival order', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 40 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            ),
          ),
        ([n, order]) => {
          const builder = createChunkIndexBuilder('memory', n);
          for (const i of order) {
            if (i % 3 === 0) builder.setZero(i);
            else builder.set(i, patternChunk(i));
          }
          expect(builder.filled).toBe(n);
          const index = builder.finish();
          expect(index.kind).toBe('memory');
          expect(index.count).toBe(n);
          expect(index.byteLength).toBe(n * 4096);
          for (let i = 0; i < n; i++) {
            expect(index.hashAt(i)).toEqual(i % 3 === 0 ? ZERO_CHUNK_HASH : sha256(patternChunk(i)));
          }
        },
      ),
    );
  });

  it('hashes an all-zero page given with its bytes like setZero', () => {
    const builder = createChunkIndexBuilder('memory', 1);
    builder.set(0, new Uint8Array(4096));
    expect(builder.finish().hashAt(0)).toEqual(ZERO_CHUNK_HASH);
  });

  it('keeps the last content of a page sent twice, counting it once', () => {
    const builder = createChunkIndexBuilder('memory', 2);
    builder.set(0, patternChunk(1));
    builder.set(0, patternChunk(2));
    builder.set(1, patternChunk(3));
    builder.setZero(1);
    expect(builder.filled).toBe(2);
    const index = builder.finish();
    expect(index.hashAt(0)).toEqual(sha256(patternChunk(2)));
    expect(index.hashAt(1)).toEqual(ZERO_CHUNK_HASH);
  });

  it('refuses to finish with unset chunks, naming the first ones', () => {
    const builder = createChunkIndexBuilder('memory', 10);
    builder.set(3, patternChunk(3));
    expect(() => builder.finish()).toThrow(/9 of 10 chunks never set \(first: 0, 1, 2, 4, 5\)/);
  });

  it('treats unset chunks as zero when told to', () => {
    const builder = createChunkIndexBuilder('memory', 3);
    builder.set(1, patternChunk(1));
    const index = builder.finish({ unsetAreZero: true });
    expect(index.hashAt(0)).toEqual(ZERO_CHUNK_HASH);
    expect(index.hashAt(1)).toEqual(sha256(patternChunk(1)));
    expect(index.hashAt(2)).toEqual(ZERO_CHUNK_HASH);
  });

  it('rejects bad indexes, bad page sizes and use after finish', () => {
    const builder = createChunkIndexBuilder('disk', 2);
    expect(() => builder.set(2, patternChunk(0))).toThrow(RangeError);
    expect(() => builder.setZero(-1)).toThrow(RangeError);
    expect(() => builder.setZero(0.5)).toThrow(RangeError);
    expect(() => builder.set(0, new Uint8Array(100))).toThrow(RangeError);
    builder.setZero(0);
    builder.setZero(1);
    expect(builder.finish().kind).toBe('disk');
    expect(() => builder.setZero(0)).toThrow(/finished/);
    expect(() => builder.finish()).toThrow(/finished/);
    expect(() => createChunkIndexBuilder('memory', -1)).toThrow(RangeError);
    expect(createChunkIndexBuilder('memory', 0).finish().count).toBe(0);
  });
});
