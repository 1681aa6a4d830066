import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHUNK_SIZE, HASH_SIZE, hashChunk, isZeroChunk, isZeroHash, ZERO_CHUNK_HASH } from '../src/index.js';
import { patternChunk, sha256 } from './helpers.js';

describe('chunk hashing', () => {
  it('has 4 KiB chunks and 32-byte sha256 hashes', () => {
    expect(CHUNK_SIZE).toBe(4096);
    expect(HASH_SIZE).toBe(32);
    expect(ZERO_CHUNK_HASH).toEqual(sha256(new Uint8Array(4096)));
  });

  it('hashes a chunk with sha256', () => {
    const chunk = patternChunk(3);
    expect(new Uint8Array(hashChunk(chunk))).toEqual(sha256(chunk));
  });

  it('hashes a short chunk as if zero-padded to 4 KiB', () => {
    const tail = patternChunk(5).subarray(0, 1000);
    const padded = new Uint8Array(4096);
    padded.set(tail);
    expect(new Uint8Array(hashChunk(tail))).toEqual(sha256(padded));
    expect(new Uint8Array(hashChunk(new Uint8Array(10)))).toEqual(ZERO_CHUNK_HASH);
  });

  it('rejects empty and oversized chunks', () => {
    expect(() => hashChunk(new Uint8Array(0))).toThrow(RangeError);
    expect(() => hashChunk(new Uint8Array(4097))).toThrow(RangeError);
    expect(() => isZeroChunk(new Uint8Array(4097))).toThrow(RangeError);
  });

  it('detects zero chunks, whatever the alignment of the view', () => {
    const backing = new Uint8Array(4096 * 3);
    expect(isZeroChunk(backing.subarray(0, 4096))).toBe(true);
    expect(isZeroChunk(backing.subarray(3, 4099))).toBe(true);
    expect(isZeroChunk(backing.subarray(0, 17))).toBe(true);
    backing[4098] = 1;
    expect(isZeroChunk(backing.subarray(3, 4099))).toBe(false);
    expect(isZeroChunk(backing.subarray(4099, 8195))).toBe(true);
  });

  it('finds a single non-zero byte anywhere', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 1, max: 255 }), (at, value) => {
        const chunk = new Uint8Array(4096);
        chunk[at] = value;
        expect(isZeroChunk(chunk)).toBe(false);
        expect(isZeroHash(hashChunk(chunk))).toBe(false);
      }),
    );
  });

  it('recognises the zero hash and keeps its own copy of it', () => {
    expect(isZeroHash(hashChunk(new Uint8Array(4096)))).toBe(true);
    expect(isZeroHash(ZERO_CHUNK_HASH)).toBe(true);
    expect(isZeroHash(ZERO_CHUNK_HASH.subarray(0, 31))).toBe(false);
    const copy = hashChunk(new Uint8Array(4096));
    copy[0] = (copy[0] ?? 0) ^ 1;
    expect(isZeroHash(hashChunk(new Uint8Array(4096)))).toBe(true);
  });
});
