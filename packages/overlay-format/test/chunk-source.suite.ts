import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ChunkSource } from '../src/index.js';

/** The contract every ChunkSource meets; `make` gets the bytes the source must serve. */
export function chunkSourceConformance(
  name: string,
  make: (bytes: Uint8Array) => Promise<ChunkSource>,
): void {
  describe(`ChunkSource ${name}`, () => {
    const bytes = randomBytes(100_000);

    it('reports the size and reads exact ranges', async () => {
      const source = await make(bytes);
      expect(await source.size()).toBe(bytes.length);
      for (const [offset, length] of [
        [0, 10],
        [99_990, 10],
        [12_345, 54_321],
        [500, 0],
      ] as const)
        expect(
          Buffer.from(await source.read(offset, length)).equals(bytes.subarray(offset, offset + length)),
        ).toBe(true);
      await source.close?.();
    });

    it('rejects reads past the end', async () => {
      const source = await make(bytes);
      await expect(source.read(99_999, 2)).rejects.toThrow();
      await source.close?.();
    });
  });
}
