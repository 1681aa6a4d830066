import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BaseInfo, BaseRegistry } from '@cloudlet/base-registry';
import {
  OverlayFormatError,
  type OverlayManifest,
  type OverlayReader,
  openOverlay,
  openOverlaySource,
} from '@cloudlet/overlay-format';
import {
  createQemuDriver,
  type PortForwardInput,
  probeQemuHost,
  Qcow2WriterError,
  type QemuDriver,
  type ResolvedPortForward,
  type RunningVm,
  stopDetachedVm,
} from '@cloudlet/qemu-driver';
import { specOnDisk } from '../resume-base.js';
import { baseForOverlay, checkFreeSpace, checkHost, checkOverlayFitsBase } from './checks.js';
import { SynthesisError } from './errors.js';
import { type Reconstruction, reconstructOverlay } from './reconstruct.js';

export type SynthesisStage = 'open' | 'check' | 'apply' | 'resume' | 'ready';

export interface SynthesisProgress {
  readonly stage: SynthesisStage;
  /** While segments are applied: compressed overlay bytes done / total, and the network bytes so far. */
  readonly bytesDone?: number;
  readonly totalBytes?: number;
  readonly segmentsDone?: number;
  readonly segments?: number;
  readonly base?: BaseInfo;
}

export interface SynthesizeOptions {
  readonly registry: BaseRegistry;
  /**
   * A local overlay zip, an http(s) URL (HTTP Range reads; a plain download if the server has none), or an
   * open reader (e.g. over an upload still arriving), which synthesis then owns and closes.
   */
  readonly overlay: string | OverlayReader;
  /** Gives up: the error is the signal's reason, and nothing is left behind (as for any failure). */
  readonly signal?: AbortSignal;
  /** The base to use (id or unique prefix); it must be the overlay's. Default: the overlay's base. */
  readonly base?: string;
  /** Host-side forwards replacing the overlay's (e.g. host port 0 = any free port). */
  readonly portForwards?: readonly PortForwardInput[];
  /** The VM's folder (its qcow2 disk); default a new folder under `$CLOUDLET_HOME/synthesis`. Removed by stop(). */
  readonly workDir?: string;
  /** Require the VNC display (a base made with one): refused before QEMU starts otherwise. */
  readonly vnc?: boolean;
  /** Segment reads running ahead of the one applied (default 4). */
  readonly inFlight?: number;
  /** Allow `detach()` (QEMU then survives this process once detached). */
  readonly detachable?: boolean;
  readonly onProgress?: (progress: SynthesisProgress) => void;
  readonly driver?: QemuDriver;
}

/** Where the synthesized VM can be reached. */
export interface SynthesisEndpoints {
  readonly portForwards: readonly ResolvedPortForward[];
  readonly serialSocket: string;
  readonly serialLog: string;
  readonly qmpSocket: string;
  readonly vncSocket?: string;
}

/** Seconds per stage, from the call to the guest running. */
export interface SynthesisTimings {
  readonly open: number;
  readonly check: number;
  /** Fetch, sha256, decompression and applying every segment (disk qcow2 and memory pages). */
  readonly apply: number;
  /** QEMU start, the migration stream loaded, `cont`. */
  readonly resume: number;
  readonly total: number;
}

export interface SynthesisStats {
  readonly overlayBytes: number;
  /** Where the overlay came from; 'reader' when the caller opened it. */
  readonly source: 'file' | 'http-range' | 'http-download' | 'reader';
  readonly networkBytes: number;
  readonly memoryPages: number;
  readonly diskClusters: number;
}

export interface SynthesizedVm {
  readonly vm: RunningVm;
  readonly base: BaseInfo;
  readonly workDir: string;
  /** The VM's qcow2 disk (backed by the base's disk). */
  readonly disk: string;
  readonly endpoints: SynthesisEndpoints;
  readonly timings: SynthesisTimings;
  readonly stats: SynthesisStats;
  /** Stops the VM and removes its folder; `keepDisk` leaves the qcow2 (and only it) in place. Idempotent. */
  stop(options?: { keepDisk?: boolean }): Promise<void>;
  /**
   * Leaves QEMU running after this process (needs `detachable`); its folder records how to reach and stop
   * it: `stopDetachedSynthesis(workDir)`. This handle must not be used afterwards.
   */
  detach(): Promise<DetachedSynthesis>;
}

/** What a detached VM's folder records (`vm.json`). */
export interface DetachedSynthesis {
  readonly pid: number;
  readonly runDir: string;
  readonly workDir: string;
  readonly disk: string;
  readonly endpoints: SynthesisEndpoints;
}

const DETACHED_FILE = 'vm.json';

const seconds = (from: number, to: number) => (to - from) / 1000;

/** A new, empty folder: synthesis removes it on failure and on stop(), so it must hold nothing else. */
async function newWorkDir(registry: BaseRegistry, given: string | undefined): Promise<string> {
  const dir = given ?? join(registry.home, 'synthesis', `vm-${Date.now()}-${randomBytes(3).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0)
    throw new SynthesisError('bad-work-dir', `${dir} is not empty (synthesis removes its folder when done)`);
  return dir;
}

/**
 * Rebuilds the customized VM of an overlay on this cloudlet and resumes it: checks the overlay against the
 * registered base and this host before anything runs, applies the segments as they arrive (disk into a qcow2
 * over the base disk, memory pages into a small store), then streams the merged memory into QEMU.
 * Anything that fails leaves no QEMU and no folder behind.
 */
export async function synthesize(options: SynthesizeOptions): Promise<SynthesizedVm> {
  const t0 = performance.now();
  const progress = options.onProgress ?? (() => {});
  const { signal } = options;
  const workDir = await newWorkDir(options.registry, options.workDir);
  let opened: OpenedOverlay | undefined;
  let rebuilt: Reconstruction | undefined;
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
    rebuilt = await reconstructOverlay({
      base,
      overlay,
      workDir,
      ...(options.inFlight === undefined ? {} : { inFlight: options.inFlight }),
      ...(signal === undefined ? {} : { signal }),
      onProgress: (p) => progress({ stage: 'apply', ...p }),
    });
    const tApply = performance.now();
    progress({ stage: 'resume' });
    const vm = await resume(options, base, overlay.manifest, rebuilt);
    const tResume = performance.now();
    const result = synthesizedVm(vm, base, workDir, rebuilt, {
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
        memoryPages: rebuilt.memoryPages,
        diskClusters: rebuilt.diskClusters,
      },
    });
    rebuilt.close();
    await overlay.close();
    progress({ stage: 'ready' });
    return result;
  } catch (error) {
    rebuilt?.close();
    await opened?.reader.close().catch(() => {});
    await rm(workDir, { recursive: true, force: true });
    throw error instanceof Qcow2WriterError && error.code === 'disk-full'
      ? new SynthesisError('disk-full', error.message, { cause: error })
      : error;
  }
}

interface OpenedOverlay {
  readonly reader: OverlayReader;
  readonly kind: SynthesisStats['source'];
  size(): Promise<number>;
  networkBytes(): number;
}

/** A location is opened here (a download is spooled into the VM's folder); a reader is taken as it is. */
async function openForSynthesis(overlay: string | OverlayReader, workDir: string): Promise<OpenedOverlay> {
  if (typeof overlay !== 'string') {
    const bytes = overlay.segments.reduce((n, s) => n + s.compressedBytes, 0);
    return { reader: overlay, kind: 'reader', size: async () => bytes, networkBytes: () => 0 };
  }
  let received = 0;
  const source = await openOverlaySource(overlay, {
    spoolDir: workDir,
    onBytes: (bytes) => {
      received = bytes;
    },
  });
  const reader = await openOverlay(source).catch(async (error: unknown) => {
    await source.close?.();
    throw namingSource(error, overlay);
  });
  return { reader, kind: source.kind, size: () => source.size(), networkBytes: () => received };
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
  rebuilt: Reconstruction,
): Promise<RunningVm> {
  const forwards = options.portForwards ?? manifest.vm.spec.nics[0]?.portForwards;
  const spec = specOnDisk(base, rebuilt.disk, { portForwards: forwards });
  const driver = options.driver ?? createQemuDriver();
  const vm = await driver.restore(spec, rebuilt.memoryStream(), {
    ...(options.detachable === true ? { detachable: true } : {}),
  });
  if (options.signal?.aborted === true) {
    await vm.kill();
    options.signal.throwIfAborted();
  }
  return vm;
}

/** The reader's errors say what is wrong, not where: name the overlay the user gave. */
function namingSource(error: unknown, location: string): unknown {
  if (!(error instanceof OverlayFormatError) || error.message.includes(location)) return error;
  return new OverlayFormatError(error.code, `${location}: ${error.message}`, { cause: error });
}

function synthesizedVm(
  vm: RunningVm,
  base: BaseInfo,
  workDir: string,
  rebuilt: Reconstruction,
  facts: { timings: SynthesisTimings; stats: SynthesisStats },
): SynthesizedVm {
  let stopped: Promise<void> | undefined;
  const { paths } = vm;
  const endpoints: SynthesisEndpoints = {
    portForwards: vm.portForwards,
    serialSocket: paths.serialSocket,
    serialLog: paths.serialLog,
    qmpSocket: paths.qmpSocket,
    ...(vm.spec.display.type === 'none' ? {} : { vncSocket: paths.vncSocket }),
  };
  return {
    vm,
    base,
    workDir,
    disk: rebuilt.disk,
    ...facts,
    endpoints,
    stop(stopOptions = {}) {
      stopped ??= (async () => {
        await vm.shutdown({ timeoutMs: 5000 });
        if (stopOptions.keepDisk === true) await removeAllBut(workDir, rebuilt.disk);
        else await rm(workDir, { recursive: true, force: true });
      })();
      return stopped;
    },
    async detach() {
      const { pid, runDir } = await vm.detach();
      const detached: DetachedSynthesis = { pid, runDir, workDir, disk: rebuilt.disk, endpoints };
      await writeFile(join(workDir, DETACHED_FILE), `${JSON.stringify(detached, null, 2)}\n`);
      return detached;
    },
  };
}

/** Stops a VM that `detach()` left running and removes its folder (`keepDisk`: all but the qcow2). */
export async function stopDetachedSynthesis(
  workDir: string,
  options: { keepDisk?: boolean } = {},
): Promise<DetachedSynthesis> {
  let detached: DetachedSynthesis;
  try {
    detached = JSON.parse(await readFile(join(workDir, DETACHED_FILE), 'utf8')) as DetachedSynthesis;
  } catch (cause) {
    throw new SynthesisError(
      'not-detached',
      `${workDir} holds no detached VM (no readable ${DETACHED_FILE})`,
      {
        cause,
      },
    );
  }
  await stopDetachedVm({ pid: detached.pid, runDir: detached.runDir });
  if (options.keepDisk === true) await removeAllBut(workDir, detached.disk);
  else await rm(workDir, { recursive: true, force: true });
  return detached;
}

async function removeAllBut(dir: string, keep: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (path !== keep) await rm(path, { recursive: true, force: true });
  }
}
