import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { isZeroChunk } from '@cloudlet/delta';
import { PAGE_SIZE } from '@cloudlet/memory-snapshot';
import { SynthesisError } from './errors.js';

/**
 * The overlay's decoded memory pages, kept until the migration stream is written: a sparse file holding only
 * the pages the overlay changes (never the whole RAM), and a byte per page saying what the overlay left there.
 */
export interface OverlayPages {
  put(index: number, data: Uint8Array): void;
  /** undefined: the overlay does not change the page; null: it makes it a zero page. */
  get(index: number): Buffer | null | undefined;
  /** Indexes the overlay changes, ascending. */
  indexes(): Generator<number>;
  readonly count: number;
  close(): void;
}

const ABSENT = 0;
const STORED = 1;
const ZERO = 2;

export function createOverlayPages(file: string, pageCount: number): OverlayPages {
  const fd = openSync(file, 'w+');
  ftruncateSync(fd, pageCount * PAGE_SIZE);
  const state = new Uint8Array(pageCount);
  let count = 0;
  let closed = false;
  const check = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= pageCount)
      throw new RangeError(`memory page ${index} outside 0..${pageCount - 1}`);
  };
  return {
    put(index, data) {
      check(index);
      if (state[index] === ABSENT) count++;
      if (isZeroChunk(data)) state[index] = ZERO;
      else {
        writeOrFull(fd, file, data, index * PAGE_SIZE);
        state[index] = STORED;
      }
    },
    get(index) {
      check(index);
      if (state[index] === ABSENT) return undefined;
      if (state[index] === ZERO) return null;
      const buffer = Buffer.alloc(PAGE_SIZE);
      readSync(fd, buffer, 0, PAGE_SIZE, index * PAGE_SIZE);
      return buffer;
    },
    *indexes() {
      for (let i = 0; i < pageCount; i++) if (state[i] !== ABSENT) yield i;
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
