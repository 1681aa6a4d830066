import { closeSync, ftruncateSync, openSync, readSync } from 'node:fs';
import { CHUNK_SIZE } from '@cloudlet/delta';
import { writeOrFull } from './overlay-pages.js';

/**
 * The overlay's decoded disk chunks for early start: a sparse file holding only them. (Full synthesis writes them into a qcow2 instead; here cloudletfs serves them.)
 */
export interface OverlayDiskChunks {
  put(index: number, data: Uint8Array): void;
  /** The chunk's bytes once `put`; undefined until then. */
  get(index: number): Buffer | undefined;
  close(): void;
}

export function createOverlayDiskChunks(file: string, diskBytes: number): OverlayDiskChunks {
  const fd = openSync(file, 'w+');
  ftruncateSync(fd, diskBytes);
  const present = new Uint8Array(Math.ceil(diskBytes / CHUNK_SIZE));
  let closed = false;
  const read = (index: number) => {
    const chunk = Buffer.alloc(Math.min(CHUNK_SIZE, diskBytes - index * CHUNK_SIZE));
    readSync(fd, chunk, 0, chunk.length, index * CHUNK_SIZE);
    return chunk;
  };
  return {
    put(index, data) {
      const length = Math.min(CHUNK_SIZE, diskBytes - index * CHUNK_SIZE);
      writeOrFull(fd, file, data, index * CHUNK_SIZE, length);
      present[index] = 1;
    },
    get: (index) => (present[index] === 1 ? read(index) : undefined),
    close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}
