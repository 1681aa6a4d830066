import type { BaseInfo, BaseRegistry } from '@cloudlet/base-registry';
import type { CloudletFs } from '@cloudlet/cloudletfs';
import type { OverlayReader } from '@cloudlet/overlay-format';
import type { PortForwardInput, QemuDriver, ResolvedPortForward, RunningVm } from '@cloudlet/qemu-driver';

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
  /**
   * Early start: resume as soon as the memory segments are applied; the disk is served through cloudletfs
   * and its segments keep arriving while the VM runs (a read of a chunk not there yet fetches it first).
   * Cannot be combined with `detachable` (this process serves the disk) or `stop({ keepDisk })`.
   */
  readonly earlyStart?: boolean;
  /**
   * How an early start gets the memory. 'on-demand' (default with the direct QEMU driver): QEMU maps the
   * guest's main RAM from a file on cloudletfs (`memory-backend-file,share=on` + `x-ignore-shared`), so the VM
   * resumes before the memory segments have arrived and a page the guest touches is fetched first. 'first'
   * (default with libvirt, which restores from a save image): every memory segment is applied before QEMU
   * starts.
   */
  readonly earlyStartMemory?: 'on-demand' | 'first';
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
  /**
   * Resolves when the whole overlay is applied: at once for full synthesis; later with `earlyStart`, whose
   * fetch or decode failure rejects it after the VM was stopped.
   */
  readonly arrived: Promise<void>;
  /** With `earlyStart`: the mount serving the disk (its stats and the order the VM touched chunks in). */
  readonly cloudletfs?: CloudletFs<'disk' | 'memory'>;
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
