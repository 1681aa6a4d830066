import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { BaseInfo } from '@cloudlet/base-registry';
import { CHUNK_SIZE } from '@cloudlet/delta';
import type { OverlayReader } from '@cloudlet/overlay-format';
import { createQcow2Writer, type Qcow2Writer } from '@cloudlet/qemu-driver';
import { DEVICE_STATE_BLOB, decodePrologue, PROLOGUE_BLOB } from '../overlay/stream-frame-blobs.js';
import { openRamPages } from '../ram-pages.js';
import { synthesizedMemoryStream } from './memory-stream.js';
import { createOverlayChunks, type OverlayChunks } from './overlay-chunks.js';
import { createRecordDecoder, type RecordDecoder } from './record-decoder.js';

export interface ReconstructProgress {
  readonly segmentsDone: number;
  readonly segments: number;
  /** Compressed segment bytes applied so far, of `totalBytes`. */
  readonly bytesDone: number;
  readonly totalBytes: number;
  readonly space: 'memory' | 'disk';
}

export interface ReconstructOptions {
  readonly base: BaseInfo;
  readonly overlay: OverlayReader;
  /** Gets the qcow2 disk and the overlay's decoded pages; the caller removes it. */
  readonly workDir: string;
  /** Segment reads (fetch + sha256 + decompression) kept running ahead of the one applied (default 4). */
  readonly inFlight?: number;
  readonly onProgress?: (progress: ReconstructProgress) => void;
  /** Checked after every segment. */
  readonly signal?: AbortSignal;
}

/** The customized VM, rebuilt from base + overlay, ready for QEMU. */
export interface Reconstruction {
  /** qcow2 backed by the base's raw disk, holding only the overlay's disk chunks. */
  readonly disk: string;
  readonly diskClusters: number;
  readonly memoryPages: number;
  /** The customized VM's migration stream (read once), produced from the base snapshot + overlay pages. */
  memoryStream(): AsyncGenerator<Uint8Array>;
  /** Releases file descriptors; the files stay for the caller to remove. */
  close(): void;
}

/**
 * Applies the overlay's segments as they arrive, in file order (memory first, then disk): memory pages go
 * to a sparse page store, disk chunks straight into a new qcow2 over the base disk. Records that copy an
 * earlier overlay chunk read it back from either.
 */
export async function reconstructOverlay(options: ReconstructOptions): Promise<Reconstruction> {
  const { base, overlay, workDir } = options;
  const { manifest } = overlay;
  const disk = join(workDir, 'disk.qcow2');
  const baseRam = await openRamPages(base.paths.memory);
  let baseDisk: number | undefined;
  let pages: OverlayChunks | undefined;
  let writer: Qcow2Writer | undefined;
  try {
    baseDisk = openSync(base.paths.disk, 'r');
    pages = createOverlayChunks(join(workDir, 'overlay-pages'), manifest.vm.memoryPages * CHUNK_SIZE);
    writer = await createQcow2Writer({
      file: disk,
      backingFile: base.paths.disk,
      backingFormat: 'raw',
      virtualSize: manifest.vm.diskBytes,
    });
    const decode = await createRecordDecoder({
      baseRam,
      baseDisk,
      overlayChunk: overlayChunkReader(pages, writer),
    });
    await applySegments(options, pages, writer, decode);
    const { clusters } = await writer.close();
    const prologue = decodePrologue(await overlay.readBlob(PROLOGUE_BLOB));
    const deviceTail = await overlay.readBlob(DEVICE_STATE_BLOB);
    const store = pages;
    return {
      disk,
      diskClusters: clusters,
      memoryPages: store.count,
      memoryStream: () =>
        synthesizedMemoryStream({ baseSnapshot: base.paths.memory, prologue, deviceTail, pages: store }),
      close: () => store.close(),
    };
  } catch (error) {
    pages?.close();
    await writer?.close().catch(() => {});
    throw error;
  } finally {
    if (baseDisk !== undefined) closeSync(baseDisk);
    await baseRam.close();
  }
}

function overlayChunkReader(pages: OverlayChunks, writer: Qcow2Writer) {
  return async (space: 'memory' | 'disk', index: number) => {
    if (space === 'memory') {
      const page = pages.get(index);
      return page === null ? Buffer.alloc(CHUNK_SIZE) : page;
    }
    return writer.read(index * CHUNK_SIZE, CHUNK_SIZE);
  };
}

async function applySegments(
  options: ReconstructOptions,
  pages: OverlayChunks,
  writer: Qcow2Writer,
  decode: RecordDecoder,
): Promise<void> {
  const { overlay } = options;
  const { diskBytes } = overlay.manifest.vm;
  const totalBytes = overlay.segments.reduce((n, s) => n + s.compressedBytes, 0);
  let bytesDone = 0;
  let segmentsDone = 0;
  for await (const { info, records } of overlay.segmentsInOrder({ inFlight: options.inFlight ?? 4 })) {
    for (const record of records) {
      const data = await decode(record);
      if (record.space === 'memory') pages.put(record.index, data);
      else {
        const at = record.index * CHUNK_SIZE;
        await writer.write(at, data.subarray(0, Math.min(CHUNK_SIZE, diskBytes - at)));
      }
    }
    options.signal?.throwIfAborted();
    bytesDone += info.compressedBytes;
    segmentsDone++;
    options.onProgress?.({
      segmentsDone,
      segments: overlay.segments.length,
      bytesDone,
      totalBytes,
      space: info.space,
    });
  }
}
