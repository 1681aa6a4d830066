export type SegmentCodecName = 'zstd' | 'xz';

/**
 * Compresses one segment or blob as a self-contained unit. Implementations run the same
 * conformance suite (test/segment-codec.suite.ts).
 */
export interface SegmentCodec {
  readonly name: SegmentCodecName;
  /** The level used when the caller gives none. */
  readonly defaultLevel: number;
  compress(data: Uint8Array, level: number): Promise<Uint8Array>;
  /**
   * Decompresses exactly `expectedSize` bytes. Rejects with OverlayFormatError 'bad-compressed-data'
   * on corrupt or truncated input and as soon as the output would exceed `expectedSize` (so a small
   * hostile input cannot expand into gigabytes), or if it is shorter.
   */
  decompress(data: Uint8Array, expectedSize: number): Promise<Uint8Array>;
}
