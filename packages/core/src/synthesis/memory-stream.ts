import { closeSync, createReadStream, openSync } from 'node:fs';
import { join } from 'node:path';
import type { BaseInfo } from '@cloudlet/base-registry';
import { CHUNK_SIZE, type ChunkResolver, createDeltaCodecs, decodeChunk, isZeroChunk } from '@cloudlet/delta';
import {
  pageIndexer,
  type RamPage,
  readMigrationStream,
  writeMigrationStream,
} from '@cloudlet/memory-snapshot';
import type { OverlayReader, RecordEncoding } from '@cloudlet/overlay-format';
import { readChunkSync } from '../chunk-file.js';
import { flattenRam } from '../overlay/flat-ram.js';
import { DEVICE_STATE_BLOB, decodePrologue, PROLOGUE_BLOB } from '../overlay/stream-frame-blobs.js';

export class OverlayMismatchError extends Error {
  override readonly name = 'OverlayMismatchError';
}

/** The overlay's memory records by flat page index (they are few next to the RAM; disk records are skipped). */
async function memoryRecords(overlay: OverlayReader): Promise<Map<number, RecordEncoding>> {
  const records = new Map<number, RecordEncoding>();
  for await (const record of overlay.records()) {
    if (record.space !== 'memory') break; // memory records come first
    records.set(record.index, record.encoding);
  }
  return records;
}

/**
 * The customized VM's memory as a migration stream, produced while the base's snapshot is read: each base page
 * is passed on, or replaced by the overlay's page at that index; zero pages are left out (QEMU's fresh RAM is
 * zero). Nothing full-size is written for the new VM's memory; base pages that overlay records refer to by
 * index are read from a sparse flat copy of the base RAM in `workDir`.
 */
export async function* synthesizedMemoryStream(
  base: BaseInfo,
  overlay: OverlayReader,
  workDir: string,
): AsyncGenerator<Uint8Array> {
  if (overlay.manifest.base.id !== base.id) {
    throw new OverlayMismatchError(`overlay is for base ${overlay.manifest.base.id}, not ${base.id}`);
  }
  const prologue = decodePrologue(await overlay.readBlob(PROLOGUE_BLOB));
  const deviceTail = await overlay.readBlob(DEVICE_STATE_BLOB);
  const records = await memoryRecords(overlay);
  const flat = await flattenRam(base.paths.memory, join(workDir, 'base-ram.flat'));
  await flat.close();
  const baseRam = openSync(join(workDir, 'base-ram.flat'), 'r');
  const baseDisk = openSync(base.paths.disk, 'r');
  try {
    const codecs = await createDeltaCodecs();
    // Only overlay pages that a later record copies ('self') are kept, and only until the stream ends.
    const copied = new Set<number>();
    for (const encoding of records.values()) {
      if (encoding.kind === 'self' && encoding.space === 'memory') copied.add(encoding.index);
    }
    const decoded = new Map<number, Uint8Array>();
    const pageAt = (index: number, baseData: Uint8Array | null): Uint8Array | null => {
      const encoding = records.get(index);
      if (encoding === undefined) return baseData;
      const resolver: ChunkResolver = {
        baseMemoryPage: (i) => readChunkSync(baseRam, i),
        baseDiskChunk: (i) => readChunkSync(baseDisk, i),
        overlayChunk: (space, i) => {
          const page = space === 'memory' ? decoded.get(i) : undefined;
          if (page === undefined) throw new OverlayMismatchError(`self reference to ${space} ${i} before it`);
          return page;
        },
        sameplaceBase: () => baseData ?? new Uint8Array(CHUNK_SIZE),
      };
      const data = decodeChunk(encoding, resolver, codecs);
      if (copied.has(index)) decoded.set(index, data);
      return isZeroChunk(data) ? null : data;
    };
    async function* pages(): AsyncGenerator<RamPage> {
      const layout = pageIndexer(prologue.blocks);
      const seen = new Uint8Array(layout.pageCount);
      for await (const item of readMigrationStream(createReadStream(base.paths.memory))) {
        if (item.kind === 'prologue' && pageIndexer(item.prologue.blocks).pageCount !== layout.pageCount) {
          throw new OverlayMismatchError("the overlay's RAM layout differs from its base's");
        }
        if (item.kind !== 'page') continue;
        const index = layout.indexOf(item.page.block, item.page.offset);
        seen[index] = 1;
        const data = pageAt(index, item.page.data);
        if (data !== null) yield { block: item.page.block, offset: item.page.offset, data };
      }
      // A base stream may leave zero pages out (as rebuilt streams do): overlay pages there come last.
      for (const index of [...records.keys()].sort((a, b) => a - b)) {
        if (seen[index] === 1) continue;
        const data = pageAt(index, null);
        if (data !== null) yield { ...layout.locate(index), data };
      }
    }
    yield* writeMigrationStream({ prologue, pages: pages(), deviceTail });
  } finally {
    closeSync(baseRam);
    closeSync(baseDisk);
  }
}
