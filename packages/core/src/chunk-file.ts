import { readSync } from 'node:fs';
import { CHUNK_SIZE } from '@cloudlet/delta';

/** Chunk `index` (4096 bytes) of an open file; synchronous because decodeChunk's resolver is. */
export function readChunkSync(fd: number, index: number): Buffer {
  const buffer = Buffer.alloc(CHUNK_SIZE);
  readSync(fd, buffer, 0, CHUNK_SIZE, index * CHUNK_SIZE);
  return buffer;
}
