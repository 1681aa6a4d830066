import { createReadStream } from 'node:fs';
import { isZeroChunk } from '@cloudlet/delta';
import {
  PAGE_SIZE,
  pageIndexer,
  type RamPage,
  readMigrationStream,
  type StreamPrologue,
  withSharedRamBlock,
  writeMigrationStream,
} from '@cloudlet/memory-snapshot';
import type { RamPages } from '../ram-pages.js';
import { OverlayMismatchError } from './errors.js';
import type { OverlayChunks } from './overlay-chunks.js';

export interface SynthesizedMemoryInput {
  /** The base's memory snapshot file. */
  readonly baseSnapshot: string;
  /** The customized VM's stream prologue and device state (the overlay's blobs). */
  readonly prologue: StreamPrologue;
  readonly deviceTail: Uint8Array;
  /** The overlay's decoded pages. */
  readonly pages: OverlayChunks;
}

/**
 * The customized VM's memory as a migration stream, produced while the base's snapshot is read: each base
 * page is passed on, or replaced by the overlay's page at that index; zero pages are left out (QEMU's fresh
 * RAM is zero). Nothing RAM-sized is written: QEMU reads it straight from here.
 */
export async function* synthesizedMemoryStream(input: SynthesizedMemoryInput): AsyncGenerator<Uint8Array> {
  const { prologue, pages } = input;
  const layout = pageIndexer(prologue.blocks);
  async function* merged(): AsyncGenerator<RamPage> {
    const seen = new Uint8Array(layout.pageCount);
    for await (const item of readMigrationStream(createReadStream(input.baseSnapshot))) {
      if (item.kind === 'prologue' && pageIndexer(item.prologue.blocks).pageCount !== layout.pageCount) {
        throw new OverlayMismatchError("the overlay's RAM layout differs from its base's");
      }
      if (item.kind !== 'page') continue;
      const index = layout.indexOf(item.page.block, item.page.offset);
      seen[index] = 1;
      const changed = pages.get(index);
      const data = changed === undefined ? item.page.data : changed;
      if (data !== null) yield { block: item.page.block, offset: item.page.offset, data };
    }
    // A base stream may leave zero pages out (as rebuilt streams do): overlay pages there come last.
    for (const index of pages.indexes()) {
      if (seen[index] === 1) continue;
      const data = pages.get(index);
      if (data != null) yield { ...layout.locate(index), data };
    }
  }
  yield* writeMigrationStream({ prologue, pages: merged(), deviceTail: input.deviceTail });
}

export interface SharedRamMemoryInput extends Omit<SynthesizedMemoryInput, 'baseSnapshot'> {
  /** The base's pages by index (the snapshot's offset table: no second scan of the file). */
  readonly baseRam: RamPages;
  /** The RAM block QEMU maps from a shared file: its pages stay out and the stream says x-ignore-shared. */
  readonly sharedBlock: string;
}

/**
 * The memory stream for memory on demand: the pages of every block but the shared one (the overlay's page,
 * else the base's; zero pages left out), read by index, so only those few hundred pages are touched.
 */
export async function* sharedRamMemoryStream(input: SharedRamMemoryInput): AsyncGenerator<Uint8Array> {
  const { pages, baseRam, sharedBlock } = input;
  const prologue = withSharedRamBlock(input.prologue, sharedBlock);
  const layout = pageIndexer(prologue.blocks);
  if (baseRam.pageCount !== layout.pageCount)
    throw new OverlayMismatchError("the overlay's RAM layout differs from its base's");
  function* streamed(): Generator<RamPage> {
    for (const block of prologue.blocks) {
      if (block.name === sharedBlock) continue;
      const first = layout.indexOf(block.name, 0);
      for (let page = 0; page < block.length / PAGE_SIZE; page++) {
        const changed = pages.get(first + page);
        const data = changed === undefined ? baseRam.pageSync(first + page) : changed;
        if (data !== null && !isZeroChunk(data)) yield { block: block.name, offset: page * PAGE_SIZE, data };
      }
    }
  }
  yield* writeMigrationStream({ prologue, pages: streamed(), deviceTail: input.deviceTail });
}
