import type { BaseRegistry } from '@cloudlet/base-registry';
import {
  createOverlayWriter,
  type OverlayRecord,
  type OverlaySummary,
  openOverlay,
  segmentCodec,
} from '@cloudlet/overlay-format';
import type { PortForwardInput } from '@cloudlet/qemu-driver';
import { synthesize } from '../synthesis/synthesize.js';
import type { SynthesizedVm } from '../synthesis/types.js';

export interface ProfileOverlayOptions {
  readonly registry: BaseRegistry;
  /** The overlay zip; rewritten in place with its disk records in the order the VM touched them. */
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
  readonly seconds: number;
}

/**
 * Access-order profiling (REAP, Elijah): resumes the overlay once with early start, records which disk chunks
 * the VM touches until the app answers, and rewrites the overlay so those come first among the disk segments
 * — what an early-start synthesis needs first then arrives first.
 */
export async function profileOverlay(options: ProfileOverlayOptions): Promise<ProfileOverlayResult> {
  const started = performance.now();
  const synth = await synthesize({
    registry: options.registry,
    overlay: options.overlay,
    earlyStart: true,
    ...(options.portForwards === undefined ? {} : { portForwards: options.portForwards }),
  });
  let touched: number[];
  try {
    await options.until(synth);
    touched = (synth.cloudletfs?.accessLog() ?? []).filter((a) => a.image === 'disk').map((a) => a.chunk);
  } finally {
    await synth.stop();
  }
  const { summary, diskRecords, inOverlay } = await rewriteInOrder(options.overlay, touched);
  return {
    summary,
    touched: touched.filter((c) => inOverlay.has(c)),
    diskRecords,
    seconds: (performance.now() - started) / 1000,
  };
}

async function rewriteInOrder(file: string, touched: readonly number[]) {
  const reader = await openOverlay(file);
  try {
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
      const disk = records.filter((r) => r.space === 'disk');
      return { summary, diskRecords: disk.length, inOverlay: new Set(disk.map((r) => r.index)) };
    } catch (error) {
      await writer.abort();
      throw error;
    }
  } finally {
    await reader.close();
  }
}

/**
 * Memory records as they are, then the disk records the VM touched in first-touch order, then the rest in
 * their order. A record copying an earlier disk chunk ('self') is kept after that chunk, which is moved up
 * with it if needed: readers require copies to point backwards.
 */
export function accessOrdered(
  records: readonly OverlayRecord[],
  touched: readonly number[],
): OverlayRecord[] {
  const memory = records.filter((r) => r.space === 'memory');
  const disk = new Map(records.filter((r) => r.space === 'disk').map((r) => [r.index, r]));
  const out: OverlayRecord[] = [...memory];
  const emitted = new Set<number>();
  const emit = (index: number) => {
    const record = disk.get(index);
    if (record === undefined || emitted.has(index)) return;
    emitted.add(index);
    const e = record.encoding;
    if (e.kind === 'self' && e.space === 'disk') emit(e.index);
    out.push(record);
  };
  for (const index of touched) emit(index);
  for (const index of disk.keys()) emit(index);
  return out;
}
