/** Caps the reader applies to declared sizes before trusting them (and the writer stays within). */
export const OVERLAY_LIMITS = {
  /** manifest.json: a 100 GiB overlay's segment table is ~25 MB. */
  maxManifestBytes: 64 * 1024 * 1024,
  /** One segment or blob, uncompressed: the reader holds one whole in memory. */
  maxSegmentBytes: 64 * 1024 * 1024,
  maxBlobBytes: 256 * 1024 * 1024,
  maxBlobs: 64,
  maxSegments: 1_000_000,
  /** 2^40 chunks = 4 PiB: beyond any disk, below 2^53 arithmetic trouble. */
  maxChunks: 2 ** 40,
} as const;

/**
 * Most bytes `n` input bytes can compress to with zstd or xz, generously: a stored compressed entry
 * larger than this for its declared size is lying about one of the two.
 */
export function compressedBound(n: number): number {
  return n + Math.ceil(n / 64) + 1024;
}
