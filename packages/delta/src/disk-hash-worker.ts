/**
 * Source of the worker that hashes a disk image, run with `new Worker(source, { eval: true })`.
 * A string rather than a module file because the package is bundled into one dist/index.js and is
 * also run from TypeScript source (vitest, tsx), where no worker file path works for both.
 *
 * Workers share the image's file descriptor and claim 'blockBytes' blocks from an atomic counter
 * (so a worker that lands on zero regions just takes more blocks), read each with positional
 * reads, and write each chunk's sha256 into the shared hash array at the chunk's place. Zero
 * chunks (one native memcmp each) skip hashing. A short tail chunk is zero-padded, like hashChunk.
 * Posts the byte count of each finished block; throws (→ 'error' event) if the file shrinks.
 */
export const DISK_HASH_WORKER_SOURCE = `
'use strict';
const { workerData, parentPort } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { hash } = require('node:crypto');
const { fd, size, blockBytes, chunkSize, hashSize, hashes: hashBuffer, next: nextBuffer } = workerData;
const hashes = new Uint8Array(hashBuffer);
const next = new Int32Array(nextBuffer);
const zero = Buffer.alloc(chunkSize);
const zeroDigest = hash('sha256', zero, 'buffer');
const block = Buffer.allocUnsafe(blockBytes);
const blocks = Math.ceil(size / blockBytes);
for (let b = Atomics.add(next, 0, 1); b < blocks; b = Atomics.add(next, 0, 1)) {
  const start = b * blockBytes;
  const length = Math.min(blockBytes, size - start);
  for (let got = 0; got < length; ) {
    const n = readSync(fd, block, got, length - got, start + got);
    if (n === 0) throw new Error('disk image ended at byte ' + (start + got) + ' while indexing ' + size + ' bytes');
    got += n;
  }
  const padded = Math.ceil(length / chunkSize) * chunkSize;
  block.fill(0, length, padded);
  let at = (start / chunkSize) * hashSize;
  for (let off = 0; off < padded; off += chunkSize, at += hashSize) {
    const isZero = zero.compare(block, off, off + chunkSize) === 0;
    hashes.set(isZero ? zeroDigest : hash('sha256', block.subarray(off, off + chunkSize), 'buffer'), at);
  }
  parentPort.postMessage(length);
}
`;
