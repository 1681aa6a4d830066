import { createReadStream } from 'node:fs';
import {
  pageIndexer,
  type RamPage,
  readMigrationStream,
  type StreamPrologue,
  withSharedRamBlock,
  writeMigrationStream,
} from '@cloudlet/memory-snapshot';
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
  /**
   * A RAM block QEMU maps from a shared file (memory on demand): its pages are left out and the stream says
   * x-ignore-shared.
   */
  readonly sharedBlock?: string;
}

/**
 * The customized VM's memory as a migration stream, produced while the base's snapshot is read: each base
 * page is passed on, or replaced by the overlay's page at that index; zero pages are left out (QEMU's fresh
 * RAM is zero). Nothing RAM-sized is written: QEMU reads it straight from here.
 */
export async function* synthesizedMemoryStream(input: SynthesizedMemoryInput): AsyncGenerator<Uint8Array> {
  const { pages, sharedBlock } = input;
  const prologue =
    sharedBlock === undefined ? input.prologue : withSharedRamBlock(input.prologue, sharedBlock);
  const layout = pageIndexer(prologue.blocks);
  const streamed = (block: string) => block !== sharedBlock;
  async function* merged(): AsyncGenerator<RamPage> {
    const seen = new Uint8Array(layout.pageCount);
    for await (const item of readMigrationStream(createReadStream(input.baseSnapshot))) {
      if (item.kind === 'prologue' && pageIndexer(item.prologue.blocks).pageCount !== layout.pageCount) {
        throw new OverlayMismatchError("the overlay's RAM layout differs from its base's");
      }
      if (item.kind !== 'page' || !streamed(item.page.block)) continue;
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
      const at = layout.locate(index);
      if (data != null && streamed(at.block)) yield { ...at, data };
    }
  }
  yield* writeMigrationStream({ prologue, pages: merged(), deviceTail: input.deviceTail });
}
