import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BaseInfo, BaseRegistry } from '@cloudlet/base-registry';
import { removeStaleMounts } from '@cloudlet/cloudletfs';
import type { OverlayManifest, OverlayReader } from '@cloudlet/overlay-format';
import { createQemuDriver, probeQemuHost, Qcow2WriterError, type RunningVm } from '@cloudlet/qemu-driver';
import { specOnDisk } from '../resume-base.js';
import { baseForOverlay, checkFreeSpace, checkHost, checkOverlayFitsBase } from './checks.js';
import { prepareEarlyStart } from './early-start.js';
import { SynthesisError } from './errors.js';
import { type OpenedOverlay, openForSynthesis } from './open-overlay.js';
import { reconstructOverlay } from './reconstruct.js';
import { type PreparedDisk, synthesizedVm } from './synthesized-vm.js';
import type { SynthesizedVm, SynthesizeOptions } from './types.js';

const seconds = (from: number, to: number) => (to - from) / 1000;

/** A new, empty folder: synthesis removes it on failure and on stop(), so it must hold nothing else. */
async function newWorkDir(registry: BaseRegistry, given: string | undefined): Promise<string> {
  const dir = given ?? join(registry.home, 'synthesis', `vm-${Date.now()}-${randomBytes(3).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0)
    throw new SynthesisError('bad-work-dir', `${dir} is not empty (synthesis removes its folder when done)`);
  return dir;
}

/** The rebuilt VM's disk and memory, ready for QEMU. */
interface Prepared extends PreparedDisk {
  readonly diskFormat: 'qcow2' | 'raw';
  readonly memoryPages: number;
  readonly diskClusters: number;
  /** Early start with memory on demand: QEMU maps the guest's RAM from this file on cloudletfs. */
  readonly ramFile?: string;
  memoryStream(): AsyncGenerator<Uint8Array>;
}

/**
 * Rebuilds the customized VM of an overlay on this cloudlet and resumes it: checks the overlay against the
 * registered base and this host before anything runs, applies the segments as they arrive (disk into a qcow2
 * over the base disk, memory pages into a small store), then streams the merged memory into QEMU. With
 * `earlyStart` the VM resumes once the memory is there and its disk keeps arriving through cloudletfs.
 * Anything that fails leaves no QEMU and no folder behind.
 */
export async function synthesize(options: SynthesizeOptions): Promise<SynthesizedVm> {
  if (options.earlyStart === true && options.detachable === true)
    throw new SynthesisError(
      'bad-options',
      'early start serves the disk from this process: it cannot detach',
    );
  if (options.earlyStartMemory !== undefined && options.earlyStart !== true)
    throw new SynthesisError('bad-options', 'earlyStartMemory needs earlyStart');
  const remoteHost = options.driver?.host;
  if (remoteHost !== undefined && (options.earlyStart === true || options.detachable === true))
    throw new SynthesisError(
      'bad-options',
      `${options.earlyStart === true ? 'early start serves the disk from this process' : 'a detached VM outlives its ssh tunnels'}: ` +
        `not with a VM on the remote host ${remoteHost}`,
    );
  const t0 = performance.now();
  const progress = options.onProgress ?? (() => {});
  const { signal } = options;
  const workDir = await newWorkDir(options.registry, options.workDir);
  let opened: OpenedOverlay | undefined;
  let prepared: Prepared | undefined;
  let vm: RunningVm | undefined;
  try {
    progress({ stage: 'open' });
    opened = await openForSynthesis(options.overlay, workDir);
    const overlay = opened.reader;
    const tOpen = performance.now();
    signal?.throwIfAborted();
    progress({ stage: 'check' });
    const base = await checkBeforeStart(options, overlay.manifest, workDir);
    const tCheck = performance.now();
    signal?.throwIfAborted();
    progress({ stage: 'apply', base, bytesDone: 0, segmentsDone: 0, segments: overlay.segments.length });
    prepared = await prepare(options, base, overlay, workDir);
    const tApply = performance.now();
    progress({ stage: 'resume' });
    vm = await resume(options, base, overlay.manifest, prepared);
    const tResume = performance.now();
    const handle = synthesizedVm(
      vm,
      base,
      workDir,
      afterArrival(prepared, overlay, () => handle.stop()),
      {
        timings: {
          open: seconds(t0, tOpen),
          check: seconds(tOpen, tCheck),
          apply: seconds(tCheck, tApply),
          resume: seconds(tApply, tResume),
          total: seconds(t0, tResume),
        },
        stats: {
          overlayBytes: await opened.size(),
          source: opened.kind,
          networkBytes: opened.networkBytes(),
          memoryPages: prepared.memoryPages,
          diskClusters: prepared.diskClusters,
        },
      },
    );
    progress({ stage: 'ready' });
    return handle;
  } catch (error) {
    await vm?.kill();
    await prepared?.release().catch(() => {});
    await opened?.reader.close().catch(() => {});
    await rm(workDir, { recursive: true, force: true });
    throw error instanceof Qcow2WriterError && error.code === 'disk-full'
      ? new SynthesisError('disk-full', error.message, { cause: error })
      : error;
  }
}

/** Full synthesis applies every segment now; early start only the memory ones (the disk follows). */
async function prepare(
  options: SynthesizeOptions,
  base: BaseInfo,
  overlay: OverlayReader,
  workDir: string,
): Promise<Prepared> {
  const progress = options.onProgress ?? (() => {});
  const inFlight = options.inFlight === undefined ? {} : { inFlight: options.inFlight };
  if (options.earlyStart === true) {
    // A crashed run's mount would fail every access (ENOTCONN); live ones are left alone.
    await removeStaleMounts(options.registry.home);
    const early = await prepareEarlyStart({
      base,
      overlay,
      workDir,
      ...inFlight,
      memory: options.earlyStartMemory ?? (options.driver?.kind === 'libvirt' ? 'first' : 'on-demand'),
      onSegment: (_i, segmentsDone, segments) => progress({ stage: 'apply', segmentsDone, segments }),
    });
    return { ...early, diskFormat: 'raw', keepable: false, diskClusters: 0, release: () => early.close() };
  }
  const rebuilt = await reconstructOverlay({
    base,
    overlay,
    workDir,
    ...inFlight,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onProgress: (p) => progress({ stage: 'apply', ...p }),
  });
  return {
    ...rebuilt,
    diskFormat: 'qcow2',
    keepable: true,
    arrived: Promise.resolve(),
    release: async () => rebuilt.close(),
  };
}

/**
 * The reader is closed once everything has arrived; a failure after the VM resumed (early start) stops the
 * VM first, then rejects `arrived`.
 */
function afterArrival(prepared: Prepared, overlay: OverlayReader, stop: () => Promise<void>): PreparedDisk {
  const arrived = prepared.arrived.then(
    () => overlay.close(),
    async (error: unknown) => {
      await stop().catch(() => {});
      await overlay.close().catch(() => {});
      throw error;
    },
  );
  arrived.catch(() => {}); // the caller may never look at it
  return { ...prepared, arrived };
}

/** Everything that can be known wrong before the disk is written and QEMU starts. */
async function checkBeforeStart(
  options: SynthesizeOptions,
  manifest: OverlayManifest,
  workDir: string,
): Promise<BaseInfo> {
  const base = baseForOverlay(options.registry, manifest, options.base);
  checkOverlayFitsBase(manifest, base);
  if (options.vnc === true && base.spec.display.type === 'none')
    throw new SynthesisError(
      'no-display',
      `base ${base.id.slice(0, 12)} has no display: make it with \`cloudlet base --vnc\``,
    );
  checkHost(base, await probeQemuHost());
  await checkFreeSpace(workDir, manifest);
  return base;
}

/** QEMU on the rebuilt disk, fed the merged memory stream, resumed; killed again if the caller gave up. */
async function resume(
  options: SynthesizeOptions,
  base: BaseInfo,
  manifest: OverlayManifest,
  prepared: Prepared,
): Promise<RunningVm> {
  const forwards = options.portForwards ?? manifest.vm.spec.nics[0]?.portForwards;
  const spec = specOnDisk(base, prepared.disk, { portForwards: forwards, format: prepared.diskFormat });
  const driver = options.driver ?? createQemuDriver();
  const vm = await driver.restore(spec, prepared.memoryStream(), {
    ...(options.detachable === true ? { detachable: true } : {}),
    ...(prepared.ramFile === undefined ? {} : { ramFile: prepared.ramFile }),
  });
  if (options.signal?.aborted === true) {
    await vm.kill();
    options.signal.throwIfAborted();
  }
  return vm;
}

export { stopDetachedSynthesis } from './synthesized-vm.js';
export type {
  DetachedSynthesis,
  SynthesisEndpoints,
  SynthesisProgress,
  SynthesisStage,
  SynthesisStats,
  SynthesisTimings,
  SynthesizedVm,
  SynthesizeOptions,
} from './types.js';
