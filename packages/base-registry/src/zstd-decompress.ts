import zstd from 'zstd-napi/binding.js';

/**
 * Decompresses a zstd stream, yielding the output in pieces of at most ~128 KiB, and only as fast
 * as the consumer asks. (zstd-napi's DecompressStream pushes everything one input chunk expands
 * to at once, ignoring backpressure: a few hundred KiB of compressed zeros would sit in memory as
 * gigabytes before any size limit downstream could cut them.) The yielded buffer is reused: the
 * consumer must be done with it before asking for the next one. Throws if the input ends inside
 * a frame.
 */
export async function* decompressZstd(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const dctx = new zstd.DCtx();
  const out = Buffer.allocUnsafe(zstd.dStreamOutSize());
  let inFrame = false;
  for await (const chunk of source) {
    let input = chunk;
    for (;;) {
      const [remaining, produced, consumed] = dctx.decompressStream(out, input);
      if (produced > 0) yield out.subarray(0, produced);
      input = input.subarray(consumed);
      if (input.length === 0 && (produced < out.length || remaining === 0)) {
        inFrame = remaining !== 0;
        break;
      }
    }
  }
  if (inFrame) throw new Error('the zstd stream ends in the middle of a frame');
}
