// The XOR codec's wire format (the conformance suite covers behaviour; this pins the bytes).
import { describe, expect, it } from 'vitest';
import { DeltaCodecError, xorCodec } from '../src/index.js';

const source = new Uint8Array(4096).fill(7);

function withBytes(at: Record<number, number>): Uint8Array {
  const target = Uint8Array.from(source);
  for (const [k, v] of Object.entries(at)) target[Number(k)] = v;
  return target;
}

describe('xorCodec format', () => {
  it('identical chunk → empty delta', () => {
    expect(xorCodec.encode(source, source)).toEqual(new Uint8Array(0));
  });

  it('one changed byte → gap, length, xor byte', () => {
    expect(xorCodec.encode(withBytes({ 10: 6 }), source)).toEqual(Uint8Array.of(10, 1, 7 ^ 6));
  });

  it('gaps after the first run count from the previous run end; gap varints take 2 bytes past 127', () => {
    const delta = xorCodec.encode(withBytes({ 0: 0, 4000: 1 }), source);
    // run 1: gap 0, len 1; run 2: gap 3999 = 0x9f 0x1f, len 1
    expect(delta).toEqual(Uint8Array.of(0, 1, 7, 0x9f, 0x1f, 1, 6));
  });

  it('merges runs separated by ≤ 2 equal bytes, splits at 3', () => {
    expect(xorCodec.encode(withBytes({ 5: 1, 8: 1 }), source)).toEqual(Uint8Array.of(5, 4, 6, 0, 0, 6));
    expect(xorCodec.encode(withBytes({ 5: 1, 9: 1 }), source)).toEqual(Uint8Array.of(5, 1, 6, 3, 1, 6));
  });

  it.each([
    ['run past the end', Uint8Array.of(0xff, 0x1f, 2, 1, 1), 'out-of-bounds'],
    ['empty run', Uint8Array.of(0, 0), 'out-of-bounds'],
    ['missing run bytes', Uint8Array.of(0, 3, 1), 'truncated'],
    ['missing length', Uint8Array.of(0), 'truncated'],
    ['varint too long', Uint8Array.of(0x80, 0x80, 0x80, 0x01), 'out-of-bounds'],
  ])('rejects %s', (_, delta, code) => {
    try {
      xorCodec.decode(delta, source);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DeltaCodecError);
      expect((e as DeltaCodecError).code).toBe(code);
      expect((e as DeltaCodecError).codec).toBe('xor');
    }
  });

  it('never writes outside the chunk: the decoded length is the source length', () => {
    const short = source.subarray(0, 100);
    expect(() => xorCodec.decode(Uint8Array.of(99, 2, 1, 1), short)).toThrow(DeltaCodecError);
    expect(xorCodec.decode(Uint8Array.of(99, 1, 1), short).length).toBe(100);
  });

  it('gives the same bytes for unaligned views (word-compare fast path vs byte path)', () => {
    const target = withBytes({ 0: 1, 3: 1, 4: 2, 1000: 9, 4095: 0 });
    const expected = xorCodec.encode(target, source);
    const t = new Uint8Array(4097);
    t.set(target, 1);
    const s = new Uint8Array(4099);
    s.set(source, 3);
    expect(xorCodec.encode(t.subarray(1), s.subarray(3))).toEqual(expected);
    expect(xorCodec.decode(expected, s.subarray(3))).toEqual(target);
  });
});
