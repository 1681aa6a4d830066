/// <reference path="./lzma-native.d.ts" />
import lzma from 'lzma-native';
import { OverlayFormatError } from '../errors.js';
import { markBuiltin } from './builtin-codecs.js';
import type { SegmentCodec } from './segment-codec.js';

const corrupt = (why: string, cause?: unknown) =>
  new OverlayFormatError('bad-compressed-data', `xz data ${why}`, cause === undefined ? {} : { cause });

/** Streams through liblzma and stops as soon as the output passes `expectedSize`. */
function decompressCapped(data: Uint8Array, expectedSize: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const out = new Uint8Array(expectedSize);
    let written = 0;
    let settled = false;
    const decoder = lzma.createDecompressor();
    const fail = (error: OverlayFormatError) => {
      if (settled) return;
      settled = true;
      decoder.destroy();
      reject(error);
    };
    decoder.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (written + chunk.length > expectedSize)
        return fail(corrupt(`expands beyond the declared ${expectedSize} bytes`));
      out.set(chunk, written);
      written += chunk.length;
    });
    decoder.on('error', (e: Error) => fail(corrupt(`is corrupt (${e.message})`, e)));
    decoder.on('end', () => {
      if (settled) return;
      if (written !== expectedSize)
        return fail(corrupt(`decompresses to ${written} bytes, expected ${expectedSize}`));
      settled = true;
      resolve(out);
    });
    decoder.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
}

/** xz via lzma-native (liblzma 5.2.3): smaller than zstd at high presets, many times slower. */
export function xzCodec(): SegmentCodec {
  return markBuiltin({
    name: 'xz',
    defaultLevel: 6,
    compress: async (data, level) =>
      lzma.compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { preset: level }),
    decompress: decompressCapped,
  });
}
