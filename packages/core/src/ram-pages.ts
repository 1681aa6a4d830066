import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { PAGE_SIZE, pageIndexer, readMigrationStream, type StreamPrologue } from '@cloudlet/memory-snapshot';

/** A base's RAM laid out flat (page i at byte i×4096) in a sparse file, for reading pages by index. */
export interface FlatRam {
  readonly prologue: StreamPrologue;
  readonly pageCount: number;
  /** The 4096 bytes of page `index` (zeros where the snapshot had a zero page). */
  page(index: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * Writes the pages of a memory snapshot file into `flatFile` at their flat index. Zero pages are holes, so
 * the file takes what the guest had touched. Delta encoding reads the same-place base page from it.
 */
export async function flattenRam(snapshotFile: string, flatFile: string): Promise<FlatRam> {
  const out = await open(flatFile, 'w+');
  try {
    let prologue: StreamPrologue | undefined;
    let indexOf: ((block: string, offset: number) => number) | undefined;
    let pageCount = 0;
    for await (const item of readMigrationStream(createReadStream(snapshotFile))) {
      if (item.kind === 'prologue') {
        prologue = item.prologue;
        const indexer = pageIndexer(prologue.blocks);
        pageCount = indexer.pageCount;
        indexOf = (block, offset) => indexer.indexOf(block, offset);
        await out.truncate(pageCount * PAGE_SIZE);
      } else if (item.kind === 'page' && item.page.data !== null && indexOf !== undefined) {
        const at = indexOf(item.page.block, item.page.offset) * PAGE_SIZE;
        await out.write(item.page.data, 0, PAGE_SIZE, at);
      }
    }
    if (prologue === undefined) throw new Error(`${snapshotFile}: no RAM in the snapshot`);
    return flatRamOn(out, prologue, pageCount);
  } catch (error) {
    await out.close();
    throw error;
  }
}

function flatRamOn(file: FileHandle, prologue: StreamPrologue, pageCount: number): FlatRam {
  return {
    prologue,
    pageCount,
    async page(index) {
      if (index < 0 || index >= pageCount) throw new RangeError(`page ${index} outside 0..${pageCount - 1}`);
      const buffer = Buffer.alloc(PAGE_SIZE);
      await file.read(buffer, 0, PAGE_SIZE, index * PAGE_SIZE);
      return buffer;
    },
    close: () => file.close(),
  };
}
