import type { Duplex, Readable } from 'node:stream';
import { qemuArgv, type RunPaths, runPathsIn } from './argv.js';
import { sleep } from './clock.js';
import type { QemuDriverDeps } from './deps.js';
import { QemuExitedError } from './errors.js';
import { guarded } from './exit-guarded.js';
import { isHostForwardFailure } from './exit-reason.js';
import { loadIncoming } from './migration.js';
import { defaultDeps } from './node-deps.js';
import { resolveHostPorts } from './ports.js';
import { type QemuProcess, startQemuProcess } from './qemu-process.js';
import { createQmpClient } from './qmp/client.js';
import { createRunningVm, type RunningVm } from './running-vm.js';
import { createSerialConsole } from './serial/console.js';
import { parseVmSpec, type VmSpec, type VmSpecInput } from './spec.js';

export interface LaunchOptions {
  /** Keep the run folder (sockets, serial.log) after the VM is gone, e.g. to read the log. */
  readonly keepRunDir?: boolean;
  /** Where the run folder is created (default: the OS temp folder). Unix socket paths limit its length. */
  readonly runDirParent?: string;
  /** How long QEMU may take to open its QMP and serial sockets (10 s). */
  readonly startTimeoutMs?: number;
  /** Default timeout of QMP commands (30 s). */
  readonly qmpTimeoutMs?: number;
  /** Default timeout of console `waitFor`/`run` (30 s). */
  readonly consoleTimeoutMs?: number;
  /**
   * Allow `vm.detach()`: QEMU runs in its own session (Ctrl-C on the terminal does not reach it), with its
   * stderr in `<run>/qemu.log` and without a parent-death signal; a watchdog process kills it if Node dies
   * before `detach()`, so until then it still lives exactly as long as this process.
   */
  readonly detachable?: boolean;
}

export interface RestoreOptions extends LaunchOptions {
  /** Leave the guest paused after loading (default false: `cont` right away). */
  readonly paused?: boolean;
  /**
   * The guest's main RAM (block `pc.ram`) is this file, mapped shared (`memory-backend-file,share=on`) and
   * already holding the RAM's content; the stream was written with capability `x-ignore-shared` and without
   * that block's pages (memory-snapshot's `withSharedRamBlock`). QEMU reads the file as the guest touches it,
   * so a file on cloudletfs fetches memory on demand. Direct QEMU only.
   */
  readonly ramFile?: string;
}

export type MigrationSource = Readable | AsyncIterable<Uint8Array>;

/**
 * What runs VMs for cloudlet: the direct-QEMU driver (`createQemuDriver`) and the libvirt backend
 * (`createLibvirtBackend`) both implement it and pass one conformance suite (test/conformance.ts).
 */
export interface VmBackend {
  /** Which implementation this is; recorded with a base so synthesis can say what made it. */
  readonly kind?: VmBackendKind;
  /**
   * The host the VMs run on when it is not this machine (libvirt over qemu+ssh://). Such VMs cannot be
   * detached, and their disks cannot be served from here (no early start).
   */
  readonly host?: string;
  /** Boots a VM from its spec. */
  launch(spec: VmSpecInput | VmSpec, options?: LaunchOptions): Promise<RunningVm>;
  /**
   * Starts QEMU with `-incoming defer`, writes `stream` (a migration stream from `snapshot()` or rebuilt)
   * into it, then resumes the guest. The hardware in `spec` must match the snapshot's (see README);
   * on mismatch QEMU exits and this rejects with QemuExitedError, leaving no process and no run folder.
   */
  restore(spec: VmSpecInput | VmSpec, stream: MigrationSource, options?: RestoreOptions): Promise<RunningVm>;
}

export type VmBackendKind = 'qemu' | 'libvirt';

/** The direct-QEMU driver's name for the same contract; kept because much code says QemuDriver. */
export type QemuDriver = VmBackend;

const CONNECT_RETRY_MS = 20;

function isNotListeningYet(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

/** QEMU creates its sockets ~0.2 s after spawn; keep trying until then, unless it died or time is up. */
async function connectWhenReady(deps: QemuDriverDeps, proc: QemuProcess, path: string, timeoutMs: number) {
  const deadline = deps.clock.now() + timeoutMs;
  for (;;) {
    try {
      return await deps.connectUnix(path);
    } catch (error) {
      const exit = proc.exit();
      if (exit !== undefined) throw new QemuExitedError(exit, 'start-up');
      if (!isNotListeningYet(error) || deps.clock.now() >= deadline) throw error;
      await sleep(deps.clock, CONNECT_RETRY_MS);
    }
  }
}

interface Started {
  readonly vm: RunningVm;
  readonly proc: QemuProcess;
}

/** Connects the serial console and QMP of a QEMU that was just started (also used by the libvirt backend). */
export async function connectControls(
  deps: QemuDriverDeps,
  proc: QemuProcess,
  paths: RunPaths,
  options: LaunchOptions,
) {
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  // Both at once, straight after spawn: the serial chardev drops output while nobody is connected.
  const [serialSocket, qmpSocket] = await Promise.all([
    connectWhenReady(deps, proc, paths.serialSocket, timeoutMs),
    connectWhenReady(deps, proc, paths.qmpSocket, timeoutMs),
  ]);
  const console = createSerialConsole(serialSocket, {
    clock: deps.clock,
    ...(options.consoleTimeoutMs === undefined ? {} : { timeoutMs: options.consoleTimeoutMs }),
  });
  const qmp = await createQmpClient(qmpSocket, {
    clock: deps.clock,
    handshakeTimeoutMs: timeoutMs,
    ...(options.qmpTimeoutMs === undefined ? {} : { timeoutMs: options.qmpTimeoutMs }),
  }).catch(async (error: unknown) => {
    await console.close();
    throw error;
  });
  return { qmp, console };
}

async function startOnce(
  deps: QemuDriverDeps,
  spec: VmSpec,
  options: RestoreOptions,
  incoming: boolean,
): Promise<Started> {
  const dir = await deps.makeRunDir(options.runDirParent);
  const keepRunDir = options.keepRunDir ?? false;
  let proc: QemuProcess | undefined;
  try {
    const paths = runPathsIn(dir);
    const ports = await resolveHostPorts(spec, deps.pickFreePort);
    const argv = qemuArgv(ports.spec, paths, {
      ...(incoming ? { incoming: 'defer' } : {}),
      ...(options.ramFile === undefined ? {} : { ramFile: options.ramFile }),
    });
    proc = startQemuProcess(deps, argv, {
      runDir: dir,
      removeRunDirOnExit: !keepRunDir,
      detachable: options.detachable ?? false,
    });
    const controls = await guarded(proc, deps.clock, 'start-up', connectControls(deps, proc, paths, options));
    const parts = {
      proc,
      paths,
      spec: ports.spec,
      portForwards: ports.portForwards,
      ...controls,
      keepRunDir,
      detachable: options.detachable ?? false,
    };
    return { vm: createRunningVm(parts, deps), proc };
  } catch (error) {
    proc?.kill('SIGKILL');
    await proc?.exited;
    if (!keepRunDir) await deps.removeDir(dir);
    throw error;
  }
}

/** Starts QEMU; if a port picked here was taken by someone else before QEMU bound it, tries once more. */
async function start(
  deps: QemuDriverDeps,
  spec: VmSpec,
  options: RestoreOptions,
  incoming: boolean,
): Promise<Started> {
  const hasAutoPorts = spec.nics.some((nic) => nic.portForwards.some((fwd) => fwd.hostPort === 0));
  try {
    return await startOnce(deps, spec, options, incoming);
  } catch (error) {
    const retry = hasAutoPorts && error instanceof QemuExitedError && isHostForwardFailure(error.stderr);
    if (!retry) throw error;
    return startOnce(deps, spec, options, incoming);
  }
}

async function restore(deps: QemuDriverDeps, spec: VmSpec, source: MigrationSource, options: RestoreOptions) {
  const { vm, proc } = await start(deps, spec, options, true);
  try {
    const connect = (): Promise<Duplex> => deps.connectUnix(vm.paths.migrationInSocket);
    await guarded(
      proc,
      deps.clock,
      'restore',
      loadIncoming(vm.qmp, connect, vm.paths.migrationInSocket, source, {
        ignoreShared: options.ramFile !== undefined,
      }),
    );
    if (options.paused !== true) await vm.cont();
    return vm;
  } catch (error) {
    await vm.kill();
    throw error;
  }
}

/** The direct-QEMU driver. `deps` replaces the real process, socket, fs and clock functions (tests). */
export function createQemuDriver(overrides: Partial<QemuDriverDeps> = {}): QemuDriver {
  const deps: QemuDriverDeps = { ...defaultDeps(), ...overrides };
  return {
    kind: 'qemu',
    launch: async (spec, options = {}) => (await start(deps, parseVmSpec(spec), options, false)).vm,
    restore: (spec, source, options = {}) => restore(deps, parseVmSpec(spec), source, options),
  };
}
