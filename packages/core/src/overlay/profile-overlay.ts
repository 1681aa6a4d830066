import type { BaseRegistry } from '@cloudlet/base-registry';
import type { ChunkAccess } from '@cloudlet/cloudletfs';
import { pageIndexer } from '@cloudlet/memory-snapshot';
import {
  createOverlayWriter,
  type OverlayManifest,
  type OverlayRecord,
  type OverlaySummary,
  openOverlay,
  segmentCodec,
} from '@cloudlet/overlay-format';
import { MAIN_RAM_BLOCK, type PortForwardInput } from '@cloudlet/qemu-driver';
import { synthesize } from '../synthesis/synthesize.js';
import type { SynthesizedVm } from '../synthesis/types.js';

export interface ProfileOverlayOptions {
  readonly registry: BaseRegistry;
  /** The overlay zip; rewritten in place with its records in the order the VM touched them. */
  readonly overlay: string;
  /** Resolves when the app inside has answered (e.g. a GET through a forwarded port): the profile ends there. */
  readonly until: (vm: SynthesizedVm) => Promise<void>;
  readonly portForwards?: readonly PortForwardInput[];
}

export interface ProfileOverlayResult {
  readonly summary: OverlaySummary;
  /** Disk chunks of the overlay the VM read or wrote before the app answered, first touch first. */
  readonly touched: readonly number[];
  readonly diskRecords: number;
  /** The same for the overlay's memory pages (flat page indexes), touched through the RAM on cloudletfs. */
  readonly memoryTouched: readonly number[];
  readonly memoryRecords: number;
  readonly seconds: number;
}

/** Chunks the VM touched, per space, first touch first (memory as flat page indexes, like the records'). */
export interface TouchOrder {
  readonly memory: readonly number[];
  readonly disk: readonly number[];
}

/**
 * Access-order profiling (REAP, Elijah): resumes the overlay once with early start (memory on demand), records
 * which memory pages and disk chunks the VM touches until the app answers, and rewrites the overlay so those
 * come first among the memory and the disk segments — what an early-start synthesis needs first then arrives
 * first.
 */
export async function profileOverlay(options: ProfileOverlayOptions): Promise<ProfileOverlayResult> {
  const started = performance.now();
  const synth = await synthesize({
    registry: options.registry,
    overlay: options.overlay,
    earlyStart: true,
    ...(options.portForwards === undefined ? {} : { portForwards: options.portForwards }),
  });
  let log: readonly ChunkAccess[];
  try {
    await options.until(synth);
    log = synth.cloudletfs?.accessLog() ?? [];
  } finally {
    await synth.stop();
  }
  const { summary, records, touched } = await rewriteInOrder(options.overlay, log);
  const inOverlay = (space: 'memory' | 'disk') =>
    new Set(records.filter((r) => r.space === space).map((r) => r.index));
  const disk = inOverlay('disk');
  const memory = inOverlay('memory');
  return {
    summary,
    touched: touched.disk.filter((c) => disk.has(c)),
    diskRecords: disk.size,
    memoryTouched: touched.memory.filter((c) => memory.has(c)),
    memoryRecords: memory.size,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The mount's access log per image; the RAM image's chunk 0 is the main RAM block's first page. */
function touchOrder(log: readonly ChunkAccess[], manifest: OverlayManifest): TouchOrder {
  const blocks = manifest.vm.ramBlocks.map((b) => ({ name: b.name, length: b.bytes }));
  const ramFirst = pageIndexer(blocks).indexOf(MAIN_RAM_BLOCK, 0);
  return {
    disk: log.filter((a) => a.image === 'disk').map((a) => a.chunk),
    memory: log.filter((a) => a.image === 'memory').map((a) => a.chunk + ramFirst),
  };
}

async function rewriteInOrder(file: string, log: readonly ChunkAccess[]) {
  const reader = await openOverlay(file);
  try {
    const touched = touchOrder(log, reader.manifest);
    const records: OverlayRecord[] = [];
    for await (const record of reader.records()) records.push(record);
    const { manifest } = reader;
    const blobs = await Promise.all(
      manifest.blobs.map(async (b) => [b.name, await reader.readBlob(b.name)] as const),
    );
    const writer = createOverlayWriter({
      file,
      codec: segmentCodec(manifest.codec.name),
      level: manifest.codec.level,
    });
    try {
      for (const record of accessOrdered(records, touched)) await writer.add(record);
      for (const [name, bytes] of blobs) await writer.addBlob(name, bytes);
      const summary = await writer.finish({
        base: manifest.base,
        vm: manifest.vm,
        createdAt: manifest.createdAt,
      });
      return { summary, records, touched };
    } catch (error) {
      await writer.abort();
      throw error;
    }
  } finally {
    await reader.close();
  }
}

/**
 * The memory records the VM touched in first-touch order, the other memory records, then the same for the
 * disk (the format keeps memory segments before disk ones). A record copying an earlier chunk ('self') is
 * kept after that chunk, which is moved up with it if needed: readers require copies to point backwards
 * (memory records only copy memory ones).
 */
export function accessOrdered(records: readonly OverlayRecord[], touched: TouchOrder): OverlayRecord[] {
  const key = (space: 'memory' | 'disk', index: number) => `${space}:${index}`;
  const byKey = new Map(records.map((r) => [key(r.space, r.index), r]));
  const out: OverlayRecord[] = [];
  const emitted = new Set<string>();
  const emit = (space: 'memory' | 'disk', index: number) => {
    const k = key(space, index);
    const record = byKey.get(k);
    if (record === undefined || emitted.has(k)) return;
    emitted.add(k);
    const e = record.encoding;
    if (e.kind === 'self') emit(e.space, e.index);
    out.push(record);
  };
  for (const space of ['memory', 'disk'] as const) {
    for (const index of touched[space]) emit(space, index);
    for (const r of records) if (r.space === space) emit(space, r.index);
  }
  return out;
}
