import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BaseInfo, BaseRegistry } from '@cloudlet/base-registry';
import type { ChunkEncoderStats } from '@cloudlet/delta';
import type { OverlaySummary } from '@cloudlet/overlay-format';
import {
  extractLegacyRedirs,
  parseVmSpec,
  type QemuDriver,
  type RunningVm,
  type VmSpec,
} from '@cloudlet/qemu-driver';
import { resumeBase } from '../resume-base.js';
import { type DeltaChoice, type OverlayPipeline, openOverlayPipeline } from './overlay-pipeline.js';

export interface CreateOverlayProgress {
  readonly stage: 'resume' | 'prepare' | 'memory' | 'disk' | 'finish';
  /** Changed chunks found, once a stage is done. */
  readonly chunks?: number;
  /** While memory or disk is scanned. */
  readonly bytesDone?: number;
  readonly totalBytes?: number;
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
  /** Dedup against the base and within the overlay (default true); `false` only to measure its share. */
  readonly dedup?: boolean;
  /** Let guest TRIM remove freed disk blocks from the overlay (default true). */
  readonly trim?: boolean;
  /**
   * Make sure free guest pages stay out of the overlay: checks (on the serial console shell) that the guest
   * kernel runs with `init_on_free=1`, which zeroes freed pages so they arrive as zero pages and are dropped;
   * fails with GuestSetupError otherwise. Measured on the tiny VM: a freed 32 MiB tmpfs file made a 34.3 MB
   * overlay without it and 8.5 MB with it; dropping the page cache first changed nothing (docs/decisions.md).
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

/** The overlay's VM spec: the base's hardware with the forwards asked for here (host ports left to synthesis). */
function overlaySpec(base: BaseInfo, qemuArgs: readonly string[]): VmSpec {
  const { portForwards } = extractLegacyRedirs(qemuArgs);
  const nics = base.spec.nics.map((nic, i) =>
    i === 0 && portForwards.length > 0 ? { ...nic, portForwards } : nic,
  );
  return parseVmSpec({ ...base.spec, nics });
}

/** The guest is not set up for something the caller asked for. */
export class GuestSetupError extends Error {
  override readonly name = 'GuestSetupError';
}

async function requireInitOnFree(vm: RunningVm): Promise<void> {
  const cmdline = await vm.console.run('cat /proc/cmdline');
  if (!/(^|\s)init_on_free=(1|on|y)(\s|$)/.test(cmdline)) {
    throw new GuestSetupError(
      'free guest pages would enter the overlay: boot the base VM with init_on_free=1 on the kernel command ' +
        `line (it has: ${cmdline.trim()})`,
    );
  }
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

/** Customizes the resumed VM, then streams its memory snapshot into the pipeline; returns the qcow2 disk. */
async function customizeAndSnapshot(
  base: BaseInfo,
  spec: VmSpec,
  work: string,
  pipe: OverlayPipeline,
  options: CreateOverlayOptions,
): Promise<string> {
  options.onProgress?.({ stage: 'resume' });
  const resumed = await resumeBase(base, {
    workDir: work,
    portForwards: spec.nics[0]?.portForwards ?? [],
    discard: options.trim === false ? 'ignore' : 'unmap',
    ...(options.driver === undefined ? {} : { driver: options.driver }),
  });
  try {
    options.onProgress?.({ stage: 'prepare', vm: resumed.vm });
    await options.prepare(resumed.vm);
    if (options.freeMemory === true) await requireInitOnFree(resumed.vm);
    options.onProgress?.({ stage: 'memory' });
    const snapshot = await resumed.vm.snapshot();
    const stream = teeTo(snapshot.stream, options.memorySnapshotCopy);
    const scanned = (bytesDone: number, totalBytes: number) =>
      options.onProgress?.({ stage: 'memory', bytesDone, totalBytes });
    const [chunks] = await Promise.all([
      pipe.memory(stream.main, scanned),
      snapshot.completed,
      stream.copied,
    ]);
    options.onProgress?.({ stage: 'memory', chunks });
    return resumed.disk;
  } finally {
    await resumed.vm.kill(); // the VM was stopped for the snapshot: its qcow2 is the disk of that moment
  }
}

/**
 * `cloudlet overlay`: resumes the base on a copy-on-write disk, lets `prepare` customize it, streams the
 * memory snapshot through the page diff, then the qcow2's own clusters through the disk diff, into the
 * overlay pipeline (dedup, delta, compressed segments).
 */
export async function createOverlay(options: CreateOverlayOptions): Promise<CreateOverlayResult> {
  const started = performance.now();
  const { registry } = options;
  const base = registry.get(options.base);
  const spec = overlaySpec(base, options.qemuArgs ?? []);
  const work = await mkdtemp(join(tmpdir(), 'cloudlet-overlay-'));
  let pipe: OverlayPipeline | undefined;
  try {
    pipe = await openOverlayPipeline({
      base,
      indexes: await registry.openIndexes(base.id),
      output: options.output,
      spec,
      ...(options.codec === undefined ? {} : { codec: options.codec }),
      ...(options.level === undefined ? {} : { level: options.level }),
      ...(options.delta === undefined ? {} : { delta: options.delta }),
      ...(options.dedup === undefined ? {} : { dedup: options.dedup }),
    });
    const disk = await customizeAndSnapshot(base, spec, work, pipe, options);
    options.onProgress?.({ stage: 'disk' });
    const scanned = (bytesDone: number, totalBytes: number) =>
      options.onProgress?.({ stage: 'disk', bytesDone, totalBytes });
    const diskChunks = await pipe.disk(disk, scanned); // not inside `onProgress?.(…)`: that skips its arguments
    options.onProgress?.({ stage: 'disk', chunks: diskChunks });
    options.onProgress?.({ stage: 'finish' });
    const { summary, stats } = await pipe.finish();
    return { summary, stats, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    await pipe?.abort();
    throw error;
  } finally {
    if (options.keepWorkDir !== undefined) options.keepWorkDir(work);
    else await rm(work, { recursive: true, force: true });
  }
}
