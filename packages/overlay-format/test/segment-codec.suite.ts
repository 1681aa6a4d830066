import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SegmentCodec } from '../src/codecs/segment-codec.js';
import { OverlayFormatError } from '../src/errors.js';

const compressible = (n: number) => {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += text.length) text.copy(out, i);
  return out;
};

/** The contract every SegmentCodec meets. */
export function segmentCodecConformance(codec: SegmentCodec, level: number): void {
  describe(`SegmentCodec ${codec.name} (level ${level})`, () => {
    const roundTrip = async (data: Uint8Array) => {
      const packed = await codec.compress(data, level);
      expect(Buffer.from(await codec.decompress(packed, data.length)).equals(Buffer.from(data))).toBe(true);
      return packed;
    };

    it('round-trips random, zero and compressible data', async () => {
      await roundTrip(randomBytes(100_000));
      expect((await roundTrip(new Uint8Array(1 << 20))).length).toBeLessThan(4096);
      expect((await roundTrip(compressible(200_000))).length).toBeLessThan(20_000);
    });

    it('round-trips the empty input', async () => {
      await roundTrip(new Uint8Array(0));
    });

    it('round-trips arbitrary byte arrays', async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), async (data) => {
          await roundTrip(data);
        }),
        { numRuns: 30 },
      );
    });

    const rejects = async (promise: Promise<unknown>, pattern: RegExp) => {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(OverlayFormatError);
      expect((error as OverlayFormatError).code).toBe('bad-compressed-data');
      expect((error as Error).message).toMatch(pattern);
    };

    it('refuses corrupt and truncated input with a typed error', async () => {
      const data = randomBytes(50_000);
      const packed = Buffer.from(await codec.compress(data, level));
      await rejects(codec.decompress(randomBytes(1000), 1000), /corrupt|truncated|expected/);
      await rejects(codec.decompress(packed.subarray(0, packed.length - 100), data.length), /./);
      const flipped = Buffer.from(packed);
      const middle = Math.floor(flipped.length / 2);
      flipped[middle] = (flipped[middle] as number) ^ 0xff;
      await rejects(codec.decompress(flipped, data.length), /./);
    });

    it('refuses output beyond expectedSize, and output short of it', async () => {
      const packed = await codec.compress(new Uint8Array(8 << 20), level);
      await rejects(codec.decompress(packed, 4096), /beyond the declared 4096/);
      await rejects(codec.decompress(packed, (8 << 20) + 1), /expected/);
    });
  });
}
