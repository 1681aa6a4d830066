import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { PAGE_SIZE, pageIndexer, readMigrationStream, type StreamPrologue } from '@cloudlet/memory-snapshot';

/**
 * A memory snapshot's pages by flat index (pages of the blocks before + offset / 4096), read straight from
 * the snapshot file: one scan records where each page's bytes sit, so nothing RAM-sized is copied.
 */
export interface RamPages {
  readonly prologue: StreamPrologue;
  readonly pageCount: number;
  /** The 4096 bytes of page `index` (zeros where the snapshot has a zero page or none). */
  page(index: number): Promise<Uint8Array>;
  /** The same, synchronously: decodeChunk's resolver is synchronous. */
  pageSync(index: number): Buffer;
  close(): Promise<void>;
}

const NO_PAGE = -1;

/** Scans `snapshotFile` once (2 GB/s parse) and keeps an 8-byte file offset per page. */
export async function openRamPages(snapshotFile: string): Promise<RamPages> {
  let prologue: StreamPrologue | undefined;
  let offsets = new Float64Array(0);
  let indexOf: ((block: string, offset: number) => number) | undefined;
  for await (const item of readMigrationStream(createReadStream(snapshotFile))) {
    if (item.kind === 'prologue') {
      prologue = item.prologue;
      const indexer = pageIndexer(prologue.blocks);
      offsets = new Float64Array(indexer.pageCount).fill(NO_PAGE);
      indexOf = (block, offset) => indexer.indexOf(block, offset);
    } else if (item.kind === 'page' && indexOf !== undefined) {
      // A non-zero fill byte has no bytes in the file; QEMU 7.2 never sends one, and neither do we.
      if (item.page.data !== null && item.dataOffset === null)
        throw new Error(`${snapshotFile}: a filled zero page, which a base snapshot never has`);
      offsets[indexOf(item.page.block, item.page.offset)] = item.dataOffset ?? NO_PAGE;
    }
  }
  if (prologue === undefined) throw new Error(`${snapshotFile}: no RAM in the snapshot`);
  return ramPagesOn(openSync(snapshotFile, 'r'), prologue, offsets);
}

function ramPagesOn(fd: number, prologue: StreamPrologue, offsets: Float64Array): RamPages {
  const pageCount = offsets.length;
  const pageSync = (index: number): Buffer => {
    if (!Number.isInteger(index) || index < 0 || index >= pageCount)
      throw new RangeError(`page ${index} outside 0..${pageCount - 1}`);
    const buffer = Buffer.alloc(PAGE_SIZE);
    const at = offsets[index] as number;
    if (at !== NO_PAGE) readSync(fd, buffer, 0, PAGE_SIZE, at);
    return buffer;
  };
  let closed = false;
  return {
    prologue,
    pageCount,
    pageSync,
    page: async (index) => pageSync(index),
    async close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}
