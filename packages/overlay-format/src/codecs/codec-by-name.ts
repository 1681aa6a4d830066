import type { SegmentCodec, SegmentCodecName } from './segment-codec.js';
import { xzCodec } from './xz-codec.js';
import { zstdCodec } from './zstd-codec.js';

/** The codec a manifest names. */
export function segmentCodec(name: SegmentCodecName): SegmentCodec {
  return name === 'xz' ? xzCodec() : zstdCodec();
}
