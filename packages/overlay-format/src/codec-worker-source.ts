import { INCOMPRESSIBLE_SAVING, PROBE_LEVEL } from './codecs/zstd-codec.js';

/**
 * Source of the codec worker, run with `new Worker(source, { eval: true })`: a string because the
 * package is bundled into one dist/index.js and also run from TypeScript source (vitest), where no
 * worker file path works for both. Module paths come resolved from the parent (an eval worker resolves
 * `require` from the process cwd). Mirrors zstdCodec/xzCodec exactly (compress with zstd's incompressible
 * probe, and the capped decompression); test/codec-pool.test.ts runs the codec conformance suite through this
 * worker and checks its zstd output is byte-identical to zstdCodec's.
 *
 * Message in:  { id, op: 'compress', codec: 'zstd' | 'xz', level, data }          (data transferred)
 *              { id, op: 'decompress', codec, size, sha256?, data }               (sha256 checked first)
 * Message out: { ready: true } once, after loading the codec's module; then per message { id, data }
 * (transferred) or { id, error: string, code?: OverlayFormatErrorCode }.
 */
export const CODEC_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let zstd;
let zstdBinding;
let lzma;
class Typed extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
const corrupt = (codec, why) => new Typed('bad-compressed-data', codec + ' data ' + why);
async function compress(codec, level, data) {
  if (codec === 'zstd') {
    zstd ??= require(workerData.zstdPath);
    const at = (l) => zstd.compress(data, { compressionLevel: l, checksumFlag: true });
    if (level <= ${PROBE_LEVEL}) return at(level);
    const probe = at(${PROBE_LEVEL});
    return probe.length >= data.length * (1 - ${INCOMPRESSIBLE_SAVING}) ? probe : at(level);
  }
  lzma ??= require(workerData.lzmaPath);
  return lzma.compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { preset: level });
}
function zstdDecompress(data, expectedSize) {
  zstdBinding ??= require(workerData.zstdBindingPath);
  const dctx = new zstdBinding.DCtx();
  const out = new Uint8Array(expectedSize);
  const probe = new Uint8Array(1);
  let written = 0;
  let input = data;
  let remaining = 0;
  try {
    for (;;) {
      const full = written === expectedSize;
      const [left, produced, consumed] = dctx.decompressStream(full ? probe : out.subarray(written), input);
      if (full && produced > 0) throw corrupt('zstd', 'expands beyond the declared ' + expectedSize + ' bytes');
      written += full ? 0 : produced;
      input = input.subarray(consumed);
      remaining = left;
      if (input.length === 0 && (remaining === 0 || (produced === 0 && consumed === 0))) break;
      if (produced === 0 && consumed === 0 && !full) throw corrupt('zstd', 'makes no progress');
    }
  } catch (e) {
    if (e instanceof Typed) throw e;
    throw corrupt('zstd', 'is corrupt (' + e.message + ')');
  }
  if (remaining !== 0) throw corrupt('zstd', 'is truncated (ends inside a frame)');
  if (written !== expectedSize) throw corrupt('zstd', 'decompresses to ' + written + ' bytes, expected ' + expectedSize);
  return out;
}
function xzDecompress(data, expectedSize) {
  lzma ??= require(workerData.lzmaPath);
  return new Promise((resolve, reject) => {
    const out = new Uint8Array(expectedSize);
    let written = 0;
    let settled = false;
    const decoder = lzma.createDecompressor();
    const fail = (error) => {
      if (settled) return;
      settled = true;
      decoder.destroy();
      reject(error);
    };
    decoder.on('data', (chunk) => {
      if (settled) return;
      if (written + chunk.length > expectedSize)
        return fail(corrupt('xz', 'expands beyond the declared ' + expectedSize + ' bytes'));
      out.set(chunk, written);
      written += chunk.length;
    });
    decoder.on('error', (e) => fail(corrupt('xz', 'is corrupt (' + e.message + ')')));
    decoder.on('end', () => {
      if (settled) return;
      if (written !== expectedSize)
        return fail(corrupt('xz', 'decompresses to ' + written + ' bytes, expected ' + expectedSize));
      settled = true;
      resolve(out);
    });
    decoder.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
}
async function run(m) {
  if (m.op === 'compress') return new Uint8Array(await compress(m.codec, m.level, m.data));
  if (m.sha256 !== undefined && createHash('sha256').update(m.data).digest('hex') !== m.sha256)
    throw new Typed('hash-mismatch', 'does not match its sha256 in the manifest');
  return m.codec === 'zstd' ? zstdDecompress(m.data, m.size) : xzDecompress(m.data, m.size);
}
if (workerData.codec === 'zstd') {
  zstd = require(workerData.zstdPath);
  zstdBinding = require(workerData.zstdBindingPath);
} else lzma = require(workerData.lzmaPath);
parentPort.postMessage({ ready: true });
parentPort.on('message', async (m) => {
  try {
    const out = await run(m);
    parentPort.postMessage({ id: m.id, data: out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e), code: e instanceof Typed ? e.code : undefined });
  }
});
`;
