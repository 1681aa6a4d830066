/**
 * Source of the segment compression worker, run with `new Worker(source, { eval: true })`: a string
 * because the package is bundled into one dist/index.js and also run from TypeScript source (vitest),
 * where no worker file path works for both. Module paths come resolved from the parent (an eval
 * worker resolves `require` from the process cwd). Mirrors zstdCodec/xzCodec.compress exactly.
 *
 * Message in: { id, codec: 'zstd' | 'xz', level, data: Uint8Array (transferred) }.
 * Message out: { id, data: Uint8Array (transferred) } or { id, error: string }.
 */
export const COMPRESS_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
let zstd;
let lzma;
async function compress(codec, level, data) {
  if (codec === 'zstd') {
    zstd ??= require(workerData.zstdPath);
    return zstd.compress(data, { compressionLevel: level, checksumFlag: true });
  }
  lzma ??= require(workerData.lzmaPath);
  return lzma.compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { preset: level });
}
parentPort.on('message', async ({ id, codec, level, data }) => {
  try {
    const out = new Uint8Array(await compress(codec, level, data));
    parentPort.postMessage({ id, data: out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
});
`;
