import { compress } from 'zstd-napi';
import zstdBinding from 'zstd-napi/binding.js';
import { OverlayFormatError } from '../errors.js';
import { markBuiltin } from './builtin-codecs.js';
import type { SegmentCodec } from './segment-codec.js';

const corrupt = (why: string, cause?: unknown) =>
  new OverlayFormatError('bad-compressed-data', `zstd data ${why}`, cause === undefined ? {} : { cause });

/**
 * Streaming decompression straight into an `expectedSize` buffer: one-shot decompress would trust the
 * frame header's content size (or grow without bound when it is absent).
 */
function decompressCapped(data: Uint8Array, expectedSize: number): Uint8Array {
  const dctx = new zstdBinding.DCtx();
  const out = new Uint8Array(expectedSize);
  const probe = new Uint8Array(1);
  let written = 0;
  let input = data;
  let remaining = 0;
  try {
    for (;;) {
      const full = written === expectedSize;
      const target = full ? probe : out.subarray(written);
      const [left, produced, consumed] = dctx.decompressStream(target, input);
      if (full && produced > 0) throw corrupt(`expands beyond the declared ${expectedSize} bytes`);
      written += full ? 0 : produced;
      input = input.subarray(consumed);
      remaining = left;
      if (input.length === 0 && (remaining === 0 || (produced === 0 && consumed === 0))) break;
      if (produced === 0 && consumed === 0 && !full) throw corrupt('makes no progress');
    }
  } catch (e) {
    if (e instanceof OverlayFormatError) throw e;
    throw corrupt(`is corrupt (${(e as Error).message})`, e);
  }
  if (remaining !== 0) throw corrupt('is truncated (ends inside a frame)');
  if (written !== expectedSize) throw corrupt(`decompresses to ${written} bytes, expected ${expectedSize}`);
  return out;
}

/** Level 1 saving less than this means the data is incompressible: a higher level would only spend time. */
export const INCOMPRESSIBLE_SAVING = 0.02;
export const PROBE_LEVEL = 1;

// The frame checksum makes corruption an error even where no sha256 is at hand.
const compressAt = (data: Uint8Array, level: number) =>
  compress(data, { compressionLevel: level, checksumFlag: true });

/**
 * zstd at `level`, except for data that level 1 cannot shrink by 2 % (random files, encrypted or already
 * compressed content): its level-1 frame is returned, as level 19 would spend ~250 ms per MiB there to save
 * nothing (measured: docs/decisions.md).
 */
function compressSegment(data: Uint8Array, level: number): Uint8Array {
  if (level <= PROBE_LEVEL) return compressAt(data, level);
  const probe = compressAt(data, PROBE_LEVEL);
  if (probe.length >= data.length * (1 - INCOMPRESSIBLE_SAVING)) return probe;
  return compressAt(data, level);
}

export function zstdCodec(): SegmentCodec {
  return markBuiltin({
    name: 'zstd',
    // 19, not zstd's own 3: overlays 10 % smaller than at 9 with the same read time; only creation pays
    // (docs/decisions.md).
    defaultLevel: 19,
    compress: async (data, level) => compressSegment(data, level),
    decompress: async (data, expectedSize) => decompressCapped(data, expectedSize),
  });
}
