import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BaseInfo, BaseRegistry } from '@cloudlet/base-registry';
import {
  CHUNK_SIZE,
  type ChunkEncoder,
  type ChunkEncoderStats,
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
import {
  extractLegacyRedirs,
  parseVmSpec,
  type QemuDriver,
  type RunningVm,
  type VmSpec,
} from '@cloudlet/qemu-driver';
import { resumeBase } from '../resume-base.js';
import type { ChangedChunk } from './changed-chunk.js';
import { changedDiskChunks } from './disk-diff.js';
import { type FlatRam, flattenRam } from './flat-ram.js';
import { changedMemoryPages, type MemoryStreamFrame } from './memory-diff.js';
import { DEVICE_STATE_BLOB, encodePrologue, PROLOGUE_BLOB } from './stream-frame-blobs.js';

export type DeltaChoice = 'auto' | 'xor' | 'vcdiff' | 'none';

export interface CreateOverlayProgress {
  readonly stage: 'resume' | 'prepare' | 'memory' | 'disk' | 'finish';
  readonly chunks?: number;
  readonly vm?: RunningVm;
}

export interface CreateOverlayOptions {
  readonly registry: BaseRegistry;
  /** Base id or unique prefix. */
  readonly base: string;
  /** The overlay zip to write. */
  readonly output: string;
  /** Customizes the resumed base; the snapshot is taken when it resolves. */
  readonly prepare: (vm: RunningVm) => Promise<void>;
  /** The seed's `-redir tcp:HOST::GUEST` forwards; they travel inside the overlay's VM spec. */
  readonly qemuArgs?: readonly string[];
  readonly codec?: 'zstd' | 'xz';
  readonly level?: number;
  readonly delta?: DeltaChoice;
  /** Let guest TRIM remove freed disk blocks from the overlay (default true). */
  readonly trim?: boolean;
  /**
   * Before the snapshot, have the guest drop its page cache (`sync; echo 3 > /proc/sys/vm/drop_caches` on the
   * serial console shell), so freed pages are zero — and left out — in a guest booted with `init_on_free=1`.
   */
  readonly freeMemory?: boolean;
  readonly onProgress?: (progress: CreateOverlayProgress) => void;
  readonly driver?: QemuDriver;
  /** Keep the work folder (the custom VM's qcow2 disk and the base's flat RAM); for tests and debugging. */
  readonly keepWorkDir?: (dir: string) => void;
  /** Also write the custom VM's raw memory snapshot here (to verify a reconstruction). */
  readonly memorySnapshotCopy?: string;
}

export interface CreateOverlayResult {
  readonly summary: OverlaySummary;
  readonly stats: ChunkEncoderStats;
  readonly seconds: number;
}

async function codecsFor(choice: DeltaChoice): Promise<DeltaCodec[]> {
  if (choice === 'none') return [];
  const { xor, vcdiff } = await createDeltaCodecs();
  return choice === 'xor' ? [xor] : choice === 'vcdiff' ? [vcdiff] : [xor, vcdiff];
}

/** The overlay's VM spec: the base's hardware with the forwards asked for here (host ports left to synthesis). */
function overlaySpec(base: BaseInfo, qemuArgs: readonly string[]): VmSpec {
  const { portForwards } = extractLegacyRedirs(qemuArgs);
  const nics = base.spec.nics.map((nic, i) =>
    i === 0 && portForwards.length > 0 ? { ...nic, portForwards } : nic,
  );
  return parseVmSpec({ ...base.spec, nics });
}

const ZERO_CHUNK = new Uint8Array(CHUNK_SIZE);

interface Encoding {
  readonly encoder: ChunkEncoder;
  readonly writer: OverlayWriter;
}

async function encodeAll(
  { encoder, writer }: Encoding,
  space: ChunkSpace,
  changed: AsyncIterable<ChangedChunk>,
  sameplaceBase: (index: number) => Promise<Uint8Array>,
): Promise<number> {
  let count = 0;
  for await (const chunk of changed) {
    const data = chunk.data ?? ZERO_CHUNK;
    const base = chunk.data === null ? undefined : await sameplaceBase(chunk.index);
    const encoding = encoder.encode({ space, index: chunk.index }, data, base, chunk.hash);
    await writer.add({ space, index: chunk.index, encoding });
    count++;
  }
  return count;
}

/** The stream itself, or (with a file) a second reader writing the same bytes to it. */
function teeTo(stream: Readable, file: string | undefined) {
  if (file === undefined) return { main: stream, copied: Promise.resolve() };
  const main = new PassThrough();
  const copy = new PassThrough();
  stream.pipe(main);
  stream.pipe(copy);
  return { main, copied: pipeline(copy, createWriteStream(file)) };
}

async function baseDiskReader(file: string) {
  const handle = await open(file, 'r');
  return {
    async chunk(index: number) {
      const buffer = Buffer.alloc(CHUNK_SIZE);
      await handle.read(buffer, 0, CHUNK_SIZE, index * CHUNK_SIZE);
      return buffer;
    },
    close: () => handle.close(),
  };
}

/**
 * `cloudlet overlay`: resumes the base on a copy-on-write disk, lets `prepare` customize it, streams the
 * memory snapshot through the page diff (only pages that differ from the same-place base page), then the
 * qcow2's own clusters through the disk diff; every changed chunk is deduplicated / delta-encoded and written
 * into compressed segments — memory first, then disk.
 */
export async function createOverlay(options: CreateOverlayOptions): Promise<CreateOverlayResult> {
  const started = performance.now();
  const { registry, onProgress } = options;
  const base = registry.get(options.base);
  const indexes = await registry.openIndexes(base.id);
  const work = await mkdtemp(join(tmpdir(), 'cloudlet-overlay-'));
  let ram: FlatRam | undefined;
  let writer: OverlayWriter | undefined;
  try {
    ram = await flattenRam(base.paths.memory, join(work, 'base-ram.flat'));
    const spec = overlaySpec(base, options.qemuArgs ?? []);
    const codecs = await codecsFor(options.delta ?? 'auto');
    const encoder = createChunkEncoder({ lookup: createDedupLookup(indexes), codecs });
    writer = createOverlayWriter({
      file: options.output,
      codec: segmentCodec(options.codec ?? 'zstd'),
      ...(options.level === undefined ? {} : { level: options.level }),
    });
    const encoding = { encoder, writer };

    onProgress?.({ stage: 'resume' });
    const resumed = await resumeBase(base, {
      workDir: work,
      portForwards: spec.nics[0]?.portForwards ?? [],
      discard: options.trim === false ? 'ignore' : 'unmap',
      ...(options.driver === undefined ? {} : { driver: options.driver }),
    });
    const frame: MemoryStreamFrame = {};
    try {
      onProgress?.({ stage: 'prepare', vm: resumed.vm });
      await options.prepare(resumed.vm);
      if (options.freeMemory === true)
        await resumed.vm.console.run('sync; echo 3 > /proc/sys/vm/drop_caches');
      onProgress?.({ stage: 'memory' });
      const snapshot = await resumed.vm.snapshot();
      const flat = ram;
      const stream = teeTo(snapshot.stream, options.memorySnapshotCopy);
      const [memoryChunks] = await Promise.all([
        encodeAll(encoding, 'memory', changedMemoryPages(stream.main, indexes.memory, frame), (i) =>
          flat.page(i),
        ),
        snapshot.completed,
        stream.copied,
      ]);
      onProgress?.({ stage: 'memory', chunks: memoryChunks });
    } finally {
      await resumed.vm.kill(); // the disk overlay is complete: the VM was stopped for the snapshot
    }

    onProgress?.({ stage: 'disk' });
    const baseDisk = await baseDiskReader(base.paths.disk);
    try {
      const diskChunks = await encodeAll(
        encoding,
        'disk',
        changedDiskChunks(resumed.disk, indexes.disk),
        (i) => baseDisk.chunk(i),
      );
      onProgress?.({ stage: 'disk', chunks: diskChunks });
    } finally {
      await baseDisk.close();
    }

    onProgress?.({ stage: 'finish' });
    if (frame.prologue === undefined || frame.deviceTail === undefined)
      throw new Error('memory snapshot incomplete');
    await writer.addBlob(PROLOGUE_BLOB, encodePrologue(frame.prologue));
    await writer.addBlob(DEVICE_STATE_BLOB, frame.deviceTail);
    const summary = await writer.finish({
      base: { id: base.id, diskBytes: base.diskBytes, memoryPages: base.memoryPages },
      vm: {
        spec,
        diskBytes: base.diskBytes,
        memoryPages: base.memoryPages,
        ramBlocks: frame.prologue.blocks.map((b) => ({ name: b.name, bytes: b.length })),
      },
    });
    return { summary, stats: encoder.stats(), seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    await writer?.abort();
    throw error;
  } finally {
    await ram?.close();
    if (options.keepWorkDir !== undefined) options.keepWorkDir(work);
    else await rm(work, { recursive: true, force: true });
  }
}
