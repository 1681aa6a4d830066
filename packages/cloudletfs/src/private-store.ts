import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { CHUNK_SIZE, chunkCount } from './chunked-image.js';

/**
 * The VM's own writes to one image: whole chunks in a sparse file (only written chunks take space), a byte per
 * chunk saying which are there. Reads of a written chunk never go back to the image's source.
 */
export interface PrivateStore {
  has(index: number): boolean;
  get(index: number): Buffer;
  put(index: number, chunk: Uint8Array): void;
  readonly chunksWritten: number;
  close(): void;
}

export function createPrivateStore(file: string, size: number): PrivateStore {
  const fd = openSync(file, 'w+');
  ftruncateSync(fd, size);
  const written = new Uint8Array(chunkCount(size));
  let count = 0;
  let closed = false;
  return {
    has: (index) => written[index] === 1,
    get(index) {
      const chunk = Buffer.alloc(Math.min(CHUNK_SIZE, size - index * CHUNK_SIZE));
      readSync(fd, chunk, 0, chunk.length, index * CHUNK_SIZE);
      return chunk;
    },
    put(index, chunk) {
      writeSync(fd, chunk, 0, chunk.length, index * CHUNK_SIZE);
      if (written[index] !== 1) count++;
      written[index] = 1;
    },
    get chunksWritten() {
      return count;
    },
    close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}
