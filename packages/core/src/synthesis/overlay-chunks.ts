import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { CHUNK_SIZE, isZeroChunk } from '@cloudlet/delta';
import { SynthesisError } from './errors.js';

/**
 * The overlay's decoded chunks of one space, kept for the memory stream (pages) or for cloudletfs (early-start
 * disk): a sparse file holding only the chunks the overlay changes, never the whole RAM or disk, and a byte per
 * chunk saying what the overlay left there. Zero chunks take no space.
 */
export interface OverlayChunks {
  /** `data` may be a whole chunk also for a short last chunk: only the image's bytes are kept. */
  put(index: number, data: Uint8Array): void;
  /** undefined: the overlay does not change the chunk; null: it makes it a zero chunk. */
  get(index: number): Buffer | null | undefined;
  /** Indexes the overlay changes, ascending. */
  indexes(): Generator<number>;
  readonly count: number;
  close(): void;
}

const ABSENT = 0;
const STORED = 1;
const ZERO = 2;

/** A store for an image of `bytes` bytes (the last chunk may be short, as a disk's can be). */
export function createOverlayChunks(file: string, bytes: number): OverlayChunks {
  const fd = openSync(file, 'w+');
  ftruncateSync(fd, bytes);
  const chunkCount = Math.ceil(bytes / CHUNK_SIZE);
  const state = new Uint8Array(chunkCount);
  const lengthOf = (index: number) => Math.min(CHUNK_SIZE, bytes - index * CHUNK_SIZE);
  let count = 0;
  let closed = false;
  const check = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= chunkCount)
      throw new RangeError(`chunk ${index} outside 0..${chunkCount - 1}`);
  };
  return {
    put(index, data) {
      check(index);
      if (state[index] === ABSENT) count++;
      if (isZeroChunk(data)) state[index] = ZERO;
      else {
        writeOrFull(fd, file, data, index * CHUNK_SIZE, lengthOf(index));
        state[index] = STORED;
      }
    },
    get(index) {
      check(index);
      if (state[index] === ABSENT) return undefined;
      if (state[index] === ZERO) return null;
      const buffer = Buffer.alloc(lengthOf(index));
      readSync(fd, buffer, 0, buffer.length, index * CHUNK_SIZE);
      return buffer;
    },
    *indexes() {
      for (let i = 0; i < chunkCount; i++) if (state[i] !== ABSENT) yield i;
    },
    get count() {
      return count;
    },
    close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}

/** A full file system is the user's to fix: say so, naming the file, rather than a bare ENOSPC. */
export function writeOrFull(
  fd: number,
  file: string,
  data: Uint8Array,
  position: number,
  length = data.length,
) {
  try {
    writeSync(fd, data, 0, length, position);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    throw new SynthesisError('disk-full', `${file}: the disk is full (ENOSPC) while writing the rebuilt VM`, {
      cause: error,
    });
  }
}
