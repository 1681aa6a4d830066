import { createHash } from 'node:crypto';

/** Reference sha256 with the slow, obvious API (so the code under test is not its own oracle). */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** A 4 KiB chunk filled with a byte pattern derived from `seed` (non-zero for seed ≥ 0). */
export function patternChunk(seed: number): Uint8Array {
  const chunk = new Uint8Array(4096);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (seed * 31 + i * 7 + 1) & 0xff || 1;
  return chunk;
}
