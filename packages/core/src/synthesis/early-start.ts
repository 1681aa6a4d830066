import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { BaseInfo } from '@cloudlet/base-registry';
import { type ChunkedImage, type CloudletFs, mountCloudletFs } from '@cloudlet/cloudletfs';
import { CHUNK_SIZE } from '@cloudlet/delta';
import { pageIndexer, type StreamPrologue } from '@cloudlet/memory-snapshot';
import type { ChunkSpace, OverlayReader, OverlayRecord } from '@cloudlet/overlay-format';
import { MAIN_RAM_BLOCK } from '@cloudlet/qemu-driver';
import { DEVICE_STATE_BLOB, decodePrologue, PROLOGUE_BLOB } from '../overlay/stream-frame-blobs.js';
import { openRamPages, type RamPages } from '../ram-pages.js';
import { synthesizedMemoryStream } from './memory-stream.js';
import { createOverlayChunks, type OverlayChunks } from './overlay-chunks.js';
import { createRecordDecoder, type RecordDecoder } from './record-decoder.js';
import { createSegmentScheduler, type SegmentScheduler } from './segment-scheduler.js';

export interface EarlyStartOptions {
  readonly base: BaseInfo;
  readonly overlay: OverlayReader;
  readonly workDir: string;
  /** Background segment fetches at once (default 1: what the VM asks for must not queue behind many). */
  readonly inFlight?: number;
  /**
   * 'on-demand' (default): the guest's main RAM is a file on cloudletfs that QEMU maps, so the VM resumes
   * before the memory has arrived too and pages are fetched as the guest touches them. 'first': the memory
   * segments are applied before QEMU starts and the whole RAM goes through the migration stream.
   */
  readonly memory?: EarlyStartMemory;
  readonly onSegment?: (index: number, applied: number, total: number) => void;
}

export type EarlyStartMemory = 'on-demand' | 'first';

/** The customized VM ready to resume before its disk (and, on demand, its memory) has arrived. */
export interface EarlyStart {
  /** The raw disk image on cloudletfs: reads of chunks still on their way wait for them (and fetch them first). */
  readonly disk: string;
  /** With memory on demand: the main RAM image on cloudletfs, for QEMU to map (RestoreOptions.ramFile). */
  readonly ramFile?: string;
  readonly fs: CloudletFs<'disk' | 'memory'>;
  readonly memoryPages: number;
  memoryStream(): AsyncGenerator<Uint8Array>;
  /** Resolves when the whole overlay is applied; rejects with the first fetch or decode failure. */
  readonly arrived: Promise<void>;
  /** Ends background fetching, unmounts (after QEMU is gone), releases files. */
  close(): Promise<void>;
}

/**
 * Early start: the VM may run while the overlay keeps arriving in the background; a read of a chunk not yet
 * there blocks in cloudletfs and moves that chunk's segment to the front. The disk is always served so; the
 * main RAM too with memory on demand (QEMU maps it from cloudletfs, and only the small blocks — firmware,
 * option ROMs, ACPI tables — and the devices travel in the migration stream), else every memory segment is
 * applied before the VM resumes.
 */
export async function prepareEarlyStart(options: EarlyStartOptions): Promise<EarlyStart> {
  const { base, overlay, workDir } = options;
  const { manifest } = overlay;
  const onDemand = (options.memory ?? 'on-demand') === 'on-demand';
  const baseRam = await openRamPages(base.paths.memory);
  // One descriptor: cloudletfs reads through the handle, the decoder's resolver synchronously through its fd.
  const baseDiskFile = await open(base.paths.disk, 'r');
  const baseDisk = baseDiskFile.fd;
  const pages = createOverlayChunks(join(workDir, 'overlay-pages'), manifest.vm.memoryPages * CHUNK_SIZE);
  const diskChunks = createOverlayChunks(join(workDir, 'overlay-disk'), manifest.vm.diskBytes);
  const release = async () => {
    pages.close();
    diskChunks.close();
    await baseRam.close();
    await baseDiskFile.close();
  };
  let scheduler: SegmentScheduler | undefined;
  let fs: CloudletFs<'disk' | 'memory'> | undefined;
  try {
    const started = await startScheduler(options, baseRam, baseDisk, pages, diskChunks);
    scheduler = started.scheduler;
    prefetchFirstDiskChunk(overlay, scheduler);
    const prologue = decodePrologue(await overlay.readBlob(PROLOGUE_BLOB));
    const ram = mainRam(prologue);
    const streamed = onDemand ? (index: number) => !ram.holds(index) : () => true;
    await Promise.all(memorySegments(overlay, streamed).map((i) => scheduler?.need(i)));
    const deviceTail = await overlay.readBlob(DEVICE_STATE_BLOB);
    fs = await mountCloudletFs({
      mountpoint: join(workDir, 'mnt'),
      storeDir: join(workDir, 'writes'),
      images: {
        disk: diskImage(overlay, baseDiskFile, started.chunks),
        // On demand: what QEMU maps as the guest's RAM. Otherwise the RAM as it resumed (for inspection
        // and profiling; QEMU gets it as a migration stream).
        memory: onDemand ? mainRamImage(ram, baseRam, started.chunks) : memoryImage(baseRam, pages),
      },
    });
    const running = scheduler;
    const mounted = fs;
    const stream = { baseSnapshot: base.paths.memory, prologue, deviceTail, pages };
    return {
      disk: mounted.paths.disk,
      ...(onDemand ? { ramFile: mounted.paths.memory } : {}),
      fs: mounted,
      memoryPages: pages.count,
      memoryStream: () =>
        synthesizedMemoryStream(onDemand ? { ...stream, sharedBlock: MAIN_RAM_BLOCK } : stream),
      arrived: running.done,
      async close() {
        running.stop(new Error('synthesis stopped'));
        await mounted.unmount();
        await release();
      },
    };
  } catch (error) {
    scheduler?.stop(error as Error);
    await fs?.unmount().catch(() => {});
    await release();
    throw error;
  }
}

/**
 * QEMU reads the disk's first sector while it starts (virtio-blk guesses a geometry from the partition table),
 * before it serves QMP: if the overlay changed that chunk, its segment — among the last, after the memory —
 * is fetched at once instead of when QEMU blocks on it (3.1 s of a 5.9 s resume at 1 MB/s, measured).
 */
function prefetchFirstDiskChunk(overlay: OverlayReader, scheduler: SegmentScheduler): void {
  const segment = overlay.segmentOf('disk', 0);
  if (segment !== undefined) scheduler.need(segment).catch(() => {}); // a failure surfaces through `done`
}

/** Where the main RAM block's pages sit among the flat page indexes of the stream. */
interface MainRam {
  readonly first: number;
  readonly pages: number;
  holds(index: number): boolean;
}

function mainRam(prologue: StreamPrologue): MainRam {
  const block = prologue.blocks.find((b) => b.name === MAIN_RAM_BLOCK);
  if (block === undefined)
    throw new Error(`the snapshot has no "${MAIN_RAM_BLOCK}" RAM block to serve on demand`);
  const first = pageIndexer(prologue.blocks).indexOf(MAIN_RAM_BLOCK, 0);
  const pages = block.length / CHUNK_SIZE;
  return { first, pages, holds: (index) => index >= first && index < first + pages };
}

/** The segments holding overlay pages `wanted` picks (the whole page range is walked: one lookup per page). */
function memorySegments(overlay: OverlayReader, wanted: (index: number) => boolean): number[] {
  const segments = new Set<number>();
  for (let index = 0; index < overlay.manifest.vm.memoryPages; index++) {
    if (!wanted(index)) continue;
    const segment = overlay.segmentOf('memory', index);
    if (segment !== undefined) segments.add(segment);
  }
  return [...segments];
}

/** The overlay's chunks while they arrive, read through the scheduler. */
interface ArrivingChunks {
  /**
   * The overlay's chunk, once its segment is applied (fetched first if it was not yet); undefined where the
   * overlay leaves the base's chunk. Zero chunks come back as 4096 zero bytes.
   */
  get(space: ChunkSpace, index: number): Promise<Uint8Array | undefined>;
}

async function startScheduler(
  options: EarlyStartOptions,
  baseRam: RamPages,
  baseDisk: number,
  pages: OverlayChunks,
  diskChunks: OverlayChunks,
): Promise<{ scheduler: SegmentScheduler; chunks: ArrivingChunks }> {
  const { overlay } = options;
  const store = (space: ChunkSpace) => (space === 'memory' ? pages : diskChunks);
  // Disk chunks that copy a memory page not applied yet (dedup stores a page-cache file's blocks once, as
  // memory): resolved when read, so a disk segment QEMU needs early never waits for memory segments.
  const copiesOfPages = new Map<number, number>();
  let applied = 0;
  let decode: RecordDecoder | undefined;
  const scheduler: SegmentScheduler = createSegmentScheduler({
    overlay,
    inFlight: options.inFlight ?? 1,
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

/** The customized VM's RAM laid out flat: the overlay's page where it has one, else the base's. */
function memoryImage(baseRam: RamPages, pages: OverlayChunks): ChunkedImage {
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
function mainRamImage(ram: MainRam, baseRam: RamPages, chunks: ArrivingChunks): ChunkedImage {
  return {
    size: ram.pages * CHUNK_SIZE,
    async readChunk(chunk) {
      const index = ram.first + chunk;
      return (await chunks.get('memory', index)) ?? baseRam.pageSync(index);
    },
  };
}

/** The disk as cloudletfs sees it: the base's chunk, or the overlay's once its segment is applied. */
function diskImage(overlay: OverlayReader, baseDisk: FileHandle, chunks: ArrivingChunks): ChunkedImage {
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
