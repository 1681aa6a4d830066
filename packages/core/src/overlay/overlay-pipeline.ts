import { open } from 'node:fs/promises';
import type { BaseInfo } from '@cloudlet/base-registry';
import {
  CHUNK_SIZE,
  type ChunkEncoder,
  type ChunkEncoderStats,
  type ChunkIndex,
  type ChunkSpace,
  createChunkEncoder,
  createDedupLookup,
  createDeltaCodecs,
  type DeltaCodec,
} from '@cloudlet/delta';
import {
  createOverlayWriter,
  type OverlaySummary,
  type OverlayWriter,
  segmentCodec,
} from '@cloudlet/overlay-format';
import type { VmSpec } from '@cloudlet/qemu-driver';
import { openRamPages, type RamPages } from '../ram-pages.js';
import type { ChangedChunk } from './changed-chunk.js';
import { changedDiskChunks } from './disk-diff.js';
import { changedMemoryPages, type MemoryStreamFrame } from './memory-diff.js';
import { DEVICE_STATE_BLOB, encodePrologue, PROLOGUE_BLOB } from './stream-frame-blobs.js';

export type DeltaChoice = 'auto' | 'xor' | 'vcdiff' | 'none';

export type ScanProgress = (bytesDone: number, totalBytes: number) => void;

export interface OverlayPipelineOptions {
  readonly base: BaseInfo;
  readonly indexes: { readonly disk: ChunkIndex; readonly memory: ChunkIndex };
  /** The overlay zip to write. */
  readonly output: string;
  /** The VM spec carried in the overlay (the base's hardware, the overlay's forwards). */
  readonly spec: VmSpec;
  readonly codec?: 'zstd' | 'xz';
  readonly level?: number;
  readonly delta?: DeltaChoice;
  /** Dedup against the base and within the overlay (default true); `false` is for measuring its share. */
  readonly dedup?: boolean;
}

/**
 * The VM-free part of overlay creation: feed it the new VM's memory snapshot stream, then its qcow2 disk;
 * each changed chunk is deduplicated, delta-encoded and written into segments. Memory must come first:
 * a chunk in both memory and disk is then stored once, as memory.
 */
export interface OverlayPipeline {
  /** Returns the number of changed pages; `onProgress` gets bytes of RAM scanned out of the RAM size. */
  memory(stream: AsyncIterable<Uint8Array>, onProgress?: ScanProgress): Promise<number>;
  /** Returns the number of changed chunks; `onProgress` gets bytes of the qcow2's own extents scanned. */
  disk(qcow2: string, onProgress?: ScanProgress): Promise<number>;
  finish(): Promise<{ summary: OverlaySummary; stats: ChunkEncoderStats }>;
  /** Removes the partial overlay file and frees what the pipeline holds. */
  abort(): Promise<void>;
}

async function codecsFor(choice: DeltaChoice): Promise<DeltaCodec[]> {
  if (choice === 'none') return [];
  const { xor, vcdiff } = await createDeltaCodecs();
  return choice === 'xor' ? [xor] : choice === 'vcdiff' ? [vcdiff] : [xor, vcdiff];
}

const ZERO_CHUNK = new Uint8Array(CHUNK_SIZE);
/**
 * A delta that is not this much smaller than the page encoded alone did not use the base: the writer gets it
 * and the raw page, and keeps, per segment, the form that compresses smaller (measured: docs/decisions.md).
 */
const MIN_BASE_SAVING = 0.25;

async function encodeAll(
  encoder: ChunkEncoder,
  writer: OverlayWriter,
  space: ChunkSpace,
  changed: AsyncIterable<ChangedChunk>,
  sameplaceBase: (index: number) => Promise<Uint8Array>,
): Promise<number> {
  let count = 0;
  for await (const chunk of changed) {
    const data = chunk.data ?? ZERO_CHUNK;
    const base = chunk.data === null ? undefined : await sameplaceBase(chunk.index);
    const address = { space, index: chunk.index };
    const { encoding, alternative } = encoder.encodeWithAlternative(address, data, base, chunk.hash);
    await writer.add({ ...address, encoding }, alternative);
    count++;
  }
  return count;
}

export async function openOverlayPipeline(options: OverlayPipelineOptions): Promise<OverlayPipeline> {
  const { base, indexes } = options;
  const ram: RamPages = await openRamPages(base.paths.memory);
  const encoder = createChunkEncoder({
    lookup: createDedupLookup(indexes),
    codecs: await codecsFor(options.delta ?? 'auto'),
    dedup: options.dedup ?? true,
    minBaseSaving: MIN_BASE_SAVING,
  });
  const writer = createOverlayWriter({
    file: options.output,
    codec: segmentCodec(options.codec ?? 'zstd'),
    ...(options.level === undefined ? {} : { level: options.level }),
  });
  const frame: MemoryStreamFrame = {};
  const diskHandle = await open(base.paths.disk, 'r');
  const baseDiskChunk = async (index: number) => {
    const buffer = Buffer.alloc(CHUNK_SIZE);
    await diskHandle.read(buffer, 0, CHUNK_SIZE, index * CHUNK_SIZE);
    return buffer;
  };
  const release = () => Promise.allSettled([ram.close(), diskHandle.close()]);
  return {
    memory: (stream, onProgress) => {
      const onPages =
        onProgress && ((seen: number, count: number) => onProgress(seen * CHUNK_SIZE, count * CHUNK_SIZE));
      const changed = changedMemoryPages(stream, indexes.memory, frame, onPages);
      return encodeAll(encoder, writer, 'memory', changed, (i) => ram.page(i));
    },
    disk: (qcow2, onProgress) =>
      encodeAll(encoder, writer, 'disk', changedDiskChunks(qcow2, indexes.disk, onProgress), baseDiskChunk),
    async finish() {
      try {
        if (frame.prologue === undefined || frame.deviceTail === undefined) {
          throw new Error('the memory snapshot did not reach its device state');
        }
        await writer.addBlob(PROLOGUE_BLOB, encodePrologue(frame.prologue));
        await writer.addBlob(DEVICE_STATE_BLOB, frame.deviceTail);
        const summary = await writer.finish({
          base: { id: base.id, diskBytes: base.diskBytes, memoryPages: base.memoryPages },
          vm: {
            spec: options.spec,
            diskBytes: base.diskBytes,
            memoryPages: base.memoryPages,
            ramBlocks: frame.prologue.blocks.map((b) => ({ name: b.name, bytes: b.length })),
          },
        });
        return { summary, stats: encoder.stats() };
      } finally {
        await release();
      }
    },
    async abort() {
      await writer.abort();
      await release();
    },
  };
}
