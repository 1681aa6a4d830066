import { type ChunkIndex, hashChunk, isUnchanged, ZERO_CHUNK_HASH } from '@cloudlet/delta';
import { pageIndexer, readMigrationStream, type StreamPrologue } from '@cloudlet/memory-snapshot';
import type { ChangedChunk } from './changed-chunk.js';

/** The parts of the new memory stream that synthesis re-emits around the pages. */
export interface MemoryStreamFrame {
  prologue?: StreamPrologue;
  deviceTail?: Uint8Array;
}

export class RamLayoutError extends Error {
  override readonly name = 'RamLayoutError';
}

/**
 * Streams the new VM's memory snapshot and yields only the pages that differ from the base page at the same
 * place (same RAM block and offset = same flat index). The prologue and device state land in `frame` as the
 * stream passes. The RAM layout must be the base's: same blocks, same sizes.
 */
export async function* changedMemoryPages(
  stream: AsyncIterable<Uint8Array>,
  base: ChunkIndex,
  frame: MemoryStreamFrame,
  onPages?: (pagesSeen: number, pageCount: number) => void,
): AsyncGenerator<ChangedChunk> {
  let seen = 0;
  let indexOf: ((block: string, offset: number) => number) | undefined;
  for await (const item of readMigrationStream(stream)) {
    if (item.kind === 'prologue') {
      const indexer = pageIndexer(item.prologue.blocks);
      if (indexer.pageCount !== base.count) {
        throw new RamLayoutError(
          `the VM's RAM has ${indexer.pageCount} pages, its base ${base.count}: not the base's hardware`,
        );
      }
      frame.prologue = item.prologue;
      indexOf = (block, offset) => indexer.indexOf(block, offset);
    } else if (item.kind === 'deviceTail') frame.deviceTail = item.bytes;
    else if (item.kind === 'page' && indexOf !== undefined) {
      const index = indexOf(item.page.block, item.page.offset);
      if (++seen % 1024 === 0) onPages?.(seen, base.count);
      const hash = item.page.data === null ? ZERO_CHUNK_HASH : hashChunk(item.page.data);
      if (!isUnchanged(hash, base, index)) yield { index, data: item.page.data, hash };
    }
  }
}
