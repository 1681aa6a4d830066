import type { SegmentCodec } from './segment-codec.js';

const builtin = new WeakSet<SegmentCodec>();

/** Marks a codec whose compress() and decompress() the worker source reproduces by name (codec-worker-source.ts). */
export function markBuiltin(codec: SegmentCodec): SegmentCodec {
  builtin.add(codec);
  return codec;
}

export function isBuiltinCodec(codec: SegmentCodec): boolean {
  return builtin.has(codec);
}
