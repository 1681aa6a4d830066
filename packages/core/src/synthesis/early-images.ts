import type { FileHandle } from 'node:fs/promises';
import type { ChunkedImage } from '@cloudlet/cloudletfs';
import { CHUNK_SIZE } from '@cloudlet/delta';
import { pageIndexer, type StreamPrologue } from '@cloudlet/memory-snapshot';
import type { OverlayReader } from '@cloudlet/overlay-format';
import { MAIN_RAM_BLOCK } from '@cloudlet/qemu-driver';
import type { RamPages } from '../ram-pages.js';
import type { ArrivingChunks } from './arriving-chunks.js';
import type { OverlayChunks } from './overlay-chunks.js';

// The images early start serves through cloudletfs: the disk, and the RAM (mapped by QEMU with memory on
// demand, or the RAM as it resumed for inspection when the memory came first).

/** Where the main RAM block's pages sit among the flat page indexes of the stream. */
export interface MainRam {
  readonly first: number;
  readonly pages: number;
  holds(index: number): boolean;
}

export function mainRam(prologue: StreamPrologue): MainRam {
  const block = prologue.blocks.find((b) => b.name === MAIN_RAM_BLOCK);
  if (block === undefined)
    throw new Error(`the snapshot has no "${MAIN_RAM_BLOCK}" RAM block to serve on demand`);
  const first = pageIndexer(prologue.blocks).indexOf(MAIN_RAM_BLOCK, 0);
  const pages = block.length / CHUNK_SIZE;
  return { first, pages, holds: (index) => index >= first && index < first + pages };
}

/** The customized VM's RAM laid out flat: the overlay's page where it has one, else the base's. */
export function memoryImage(baseRam: RamPages, pages: OverlayChunks): ChunkedImage {
  return {
    size: baseRam.pageCount * CHUNK_SIZE,
    async readChunk(index) {
      const page = pages.get(index);
      if (page === undefined) return baseRam.pageSync(index);
      return page ?? Buffer.alloc(CHUNK_SIZE);
    },
  };
}

/** The main RAM block as QEMU maps it: the overlay's page (fetched first if still on its way), else the base's. */
export function mainRamImage(ram: MainRam, baseRam: RamPages, chunks: ArrivingChunks): ChunkedImage {
  return {
    size: ram.pages * CHUNK_SIZE,
    async readChunk(chunk) {
      const index = ram.first + chunk;
      return (await chunks.get('memory', index)) ?? baseRam.pageSync(index);
    },
  };
}

/** The disk as cloudletfs sees it: the base's chunk, or the overlay's once its segment is applied. */
export function diskImage(
  overlay: OverlayReader,
  baseDisk: FileHandle,
  chunks: ArrivingChunks,
): ChunkedImage {
  const size = overlay.manifest.vm.diskBytes;
  return {
    size,
    async readChunk(index) {
      // Applied already, or fetched now ahead of the queue; a failed fetch rejects (the guest gets EIO).
      const changed = await chunks.get('disk', index);
      if (changed !== undefined) return changed;
      const chunk = Buffer.alloc(Math.min(CHUNK_SIZE, size - index * CHUNK_SIZE));
      await baseDisk.read(chunk, 0, chunk.length, index * CHUNK_SIZE);
      return chunk;
    },
  };
}
