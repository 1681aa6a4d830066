import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { BaseInfo } from '@cloudlet/base-registry';
import { type CloudletFs, mountCloudletFs } from '@cloudlet/cloudletfs';
import { CHUNK_SIZE } from '@cloudlet/delta';
import type { OverlayReader } from '@cloudlet/overlay-format';
import { MAIN_RAM_BLOCK } from '@cloudlet/qemu-driver';
import { DEVICE_STATE_BLOB, decodePrologue, PROLOGUE_BLOB } from '../overlay/stream-frame-blobs.js';
import { openRamPages } from '../ram-pages.js';
import { startArrivingChunks } from './arriving-chunks.js';
import { diskImage, mainRam, mainRamImage, memoryImage } from './early-images.js';
import { sharedRamMemoryStream, synthesizedMemoryStream } from './memory-stream.js';
import { createOverlayChunks } from './overlay-chunks.js';
import type { SegmentScheduler } from './segment-scheduler.js';

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
    const started = await startArrivingChunks({
      overlay,
      baseRam,
      baseDisk,
      pages,
      diskChunks,
      inFlight: options.inFlight ?? 1,
      ...(options.onSegment === undefined ? {} : { onSegment: options.onSegment }),
    });
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
    const memoryStream = onDemand
      ? () => sharedRamMemoryStream({ prologue, deviceTail, pages, baseRam, sharedBlock: MAIN_RAM_BLOCK })
      : () => synthesizedMemoryStream({ baseSnapshot: base.paths.memory, prologue, deviceTail, pages });
    return {
      disk: mounted.paths.disk,
      ...(onDemand ? { ramFile: mounted.paths.memory } : {}),
      fs: mounted,
      memoryPages: pages.count,
      memoryStream,
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
