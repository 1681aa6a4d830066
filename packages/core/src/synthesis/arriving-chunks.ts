import { CHUNK_SIZE } from '@cloudlet/delta';
import type { ChunkSpace, OverlayReader, OverlayRecord } from '@cloudlet/overlay-format';
import type { RamPages } from '../ram-pages.js';
import type { OverlayChunks } from './overlay-chunks.js';
import { createRecordDecoder, type RecordDecoder } from './record-decoder.js';
import { createSegmentScheduler, type SegmentScheduler } from './segment-scheduler.js';

export interface ArrivingChunksOptions {
  readonly overlay: OverlayReader;
  readonly baseRam: RamPages;
  /** An open descriptor of the base's raw disk. */
  readonly baseDisk: number;
  /** Where decoded memory pages and disk chunks are kept. */
  readonly pages: OverlayChunks;
  readonly diskChunks: OverlayChunks;
  /** Background segment fetches at once. */
  readonly inFlight: number;
  readonly onSegment?: (index: number, applied: number, total: number) => void;
}

/** The overlay's chunks while they arrive, read through the scheduler. */
export interface ArrivingChunks {
  /**
   * The overlay's chunk, once its segment is applied (fetched first if it was not yet); undefined where the
   * overlay leaves the base's chunk. Zero chunks come back as 4096 zero bytes.
   */
  get(space: ChunkSpace, index: number): Promise<Uint8Array | undefined>;
}

/**
 * Applies the overlay's segments in the background (in file order; `need` moves one to the front) and reads
 * its chunks as they arrive: what early start's cloudletfs images and the record decoder read through.
 */
export async function startArrivingChunks(
  options: ArrivingChunksOptions,
): Promise<{ scheduler: SegmentScheduler; chunks: ArrivingChunks }> {
  const { overlay, baseRam, baseDisk, pages, diskChunks } = options;
  const store = (space: ChunkSpace) => (space === 'memory' ? pages : diskChunks);
  // Disk chunks that copy a memory page not applied yet (dedup stores a page-cache file's blocks once, as
  // memory): resolved when read, so a disk segment QEMU needs early never waits for memory segments.
  const copiesOfPages = new Map<number, number>();
  let applied = 0;
  let decode: RecordDecoder | undefined;
  const scheduler: SegmentScheduler = createSegmentScheduler({
    overlay,
    inFlight: options.inFlight,
    onApplied: (index) => options.onSegment?.(index, ++applied, overlay.segments.length),
    apply: async (_index, records: OverlayRecord[]) => {
      for (const record of records) {
        const e = record.encoding;
        if (
          record.space === 'disk' &&
          e.kind === 'self' &&
          e.space === 'memory' &&
          pages.get(e.index) === undefined
        )
          copiesOfPages.set(record.index, e.index);
        else store(record.space).put(record.index, await (decode as RecordDecoder)(record));
      }
    },
  });
  const chunks: ArrivingChunks = {
    async get(space, index) {
      const segment = overlay.segmentOf(space, index);
      if (segment === undefined) return undefined;
      for (let fetched = false; ; fetched = true) {
        const page = space === 'disk' ? copiesOfPages.get(index) : undefined;
        if (page !== undefined) return chunks.get('memory', page);
        const ready = store(space).get(index);
        if (ready !== undefined || fetched) return ready ?? Buffer.alloc(CHUNK_SIZE);
        await scheduler.need(segment);
      }
    },
  };
  // A copied chunk from another segment: that (earlier) segment is applied first.
  decode = await createRecordDecoder({ baseRam, baseDisk, overlayChunk: chunks.get });
  return { scheduler, chunks };
}
