import type { RunPaths } from './argv.js';
import { sleep } from './clock.js';
import type { QemuDriverDeps } from './deps.js';
import { DetachError, type QemuExit } from './errors.js';
import { guarded, whileAttached } from './exit-guarded.js';
import { guardConsole, guardQmp } from './guarded-controls.js';
import { formatQemuVersion } from './host/parse.js';
import { type MemorySnapshot, startSnapshot } from './migration.js';
import type { ResolvedPortForward } from './ports.js';
import type { QemuProcess } from './qemu-process.js';
import type { QmpClient } from './qmp/client.js';
import type { SerialConsole } from './serial/console.js';
import type { VmSpec } from './spec.js';

export interface ShutdownOptions {
  /** How long QEMU gets to exit after QMP `quit` before it is SIGKILLed (10 s). */
  readonly timeoutMs?: number;
}

/** What identifies a detached VM to `stopDetachedVm` (and to whoever reconnects to its sockets). */
export interface DetachedVm {
  readonly pid: number;
  /** The run folder: QMP and serial sockets, serial.log, qemu.log (QEMU's stderr). */
  readonly runDir: string;
  readonly paths: RunPaths;
}

/** A QEMU process the driver started, with its controls. */
export interface RunningVm extends AsyncDisposable {
  readonly pid: number;
  /** This QEMU's version from its QMP greeting, e.g. "7.2.22" (spelled as `probeQemuHost` spells it). */
  readonly qemuVersion: string;
  /** The spec QEMU runs, with real host ports in place of 0. */
  readonly spec: VmSpec;
  /** The private run folder and the sockets and logs in it. */
  readonly paths: RunPaths;
  readonly portForwards: readonly ResolvedPortForward[];
  readonly qmp: QmpClient;
  readonly console: SerialConsole;
  /** Resolves when QEMU has exited, for whatever reason; never rejects. */
  readonly exited: Promise<QemuExit>;
  /** QEMU's stderr so far (last 64 KiB). */
  stderr(): string;
  /** The host port forwarded to `guestPort` (first NIC that forwards it). */
  hostPort(guestPort: number, proto?: 'tcp' | 'udp'): number;
  /**
   * Stops the guest and streams its memory and device state. The VM then stays in `postmigrate` (paused)
   * until `cont()`; a second snapshot needs a `cont()` in between.
   */
  snapshot(): Promise<MemorySnapshot>;
  /** Resumes the guest (after a snapshot, or after a restore with `resume: false`). */
  cont(): Promise<void>;
  /** QMP `quit` (QEMU flushes its disks), SIGKILL after the timeout; removes the run folder. Idempotent. */
  shutdown(options?: ShutdownOptions): Promise<QemuExit>;
  /** SIGKILL at once; removes the run folder. Idempotent. */
  kill(): Promise<QemuExit>;
  /**
   * Only for VMs launched or restored with `detachable: true`: closes this process's QMP and serial
   * connections, drops the exit guard and the watchdog, and leaves QEMU running with its run folder. From
   * then on every method rejects with DetachError `detached` (async dispose does nothing). Idempotent.
   * Do not detach while a snapshot or restore is in progress.
   */
  detach(): Promise<DetachedVm>;
  /** `shutdown({ timeoutMs: 5000 })`; nothing once detached. */
  [Symbol.asyncDispose](): Promise<void>;
}

export interface RunningVmParts {
  readonly proc: QemuProcess;
  readonly paths: RunPaths;
  readonly spec: VmSpec;
  readonly portForwards: readonly ResolvedPortForward[];
  readonly qmp: QmpClient;
  readonly console: SerialConsole;
  readonly keepRunDir: boolean;
  readonly detachable: boolean;
}

type Deps = Pick<QemuDriverDeps, 'listenUnix' | 'removeDir' | 'clock'>;

function findHostPort(
  forwards: readonly ResolvedPortForward[],
  guestPort: number,
  proto: 'tcp' | 'udp',
): number {
  const fwd = forwards.find((f) => f.guestPort === guestPort && f.proto === proto);
  if (fwd === undefined) throw new Error(`no ${proto} port forward to guest port ${guestPort}`);
  return fwd.via?.hostPort ?? fwd.hostPort;
}

function detacher(parts: RunningVmParts, isFinishing: () => boolean): () => Promise<DetachedVm> {
  const { proc, paths } = parts;
  let detached: Promise<DetachedVm> | undefined;
  return () => {
    if (!parts.detachable)
      return Promise.reject(new DetachError('not-detachable', 'launch or restore with detachable: true'));
    if (detached === undefined && (proc.exit() !== undefined || isFinishing()))
      return Promise.reject(new DetachError('exited', 'QEMU has exited or is being stopped'));
    detached ??= (async () => {
      proc.detach(); // first: from here on nothing of ours touches QEMU, nor kills it when Node exits
      await Promise.allSettled([parts.qmp.close(), parts.console.close()]);
      return { pid: proc.pid, runDir: paths.dir, paths };
    })();
    return detached;
  };
}

export function createRunningVm(parts: RunningVmParts, deps: Deps): RunningVm {
  const { proc, paths, qmp, console } = parts;
  let finished: Promise<QemuExit> | undefined;
  // Runs once, after QEMU is gone however it went.
  const finish = () => {
    finished ??= (async () => {
      const exit = await proc.exited;
      await Promise.allSettled([qmp.close(), console.close()]);
      if (!parts.keepRunDir) await deps.removeDir(paths.dir);
      return exit;
    })();
    return finished;
  };
  const shutdown = async ({ timeoutMs = 10_000 }: ShutdownOptions = {}) => {
    if (proc.isDetached()) throw new DetachError('detached', 'shutdown: the VM is detached');
    if (proc.exit() === undefined && finished === undefined) {
      qmp.quit().catch(() => {}); // a dead or hung QEMU is handled by the timeout below
      const exit = await Promise.race([proc.exited, sleep(deps.clock, timeoutMs).then(() => undefined)]);
      if (exit === undefined) proc.kill('SIGKILL');
    }
    return finish();
  };
  return {
    pid: proc.pid,
    qemuVersion: formatQemuVersion(qmp.greeting.version.qemu),
    spec: parts.spec,
    paths,
    portForwards: parts.portForwards,
    qmp: guardQmp(qmp, proc, deps.clock),
    console: guardConsole(console, proc, deps.clock),
    exited: proc.exited,
    stderr: proc.stderr,
    hostPort: (guestPort, proto = 'tcp') => findHostPort(parts.portForwards, guestPort, proto),
    snapshot: () =>
      whileAttached(proc, deps.clock, 'snapshot', () =>
        startSnapshot(
          qmp,
          () => deps.listenUnix(paths.migrationOutSocket),
          paths.migrationOutSocket,
          deps.clock,
        ),
      ).then((snap) => {
        const completed = guarded(proc, deps.clock, 'snapshot', snap.completed);
        completed.catch(() => {}); // reported to whoever awaits it; never an unhandled rejection
        return { stream: snap.stream, completed };
      }),
    cont: () => whileAttached(proc, deps.clock, 'cont', () => qmp.cont()),
    shutdown,
    kill: () => {
      if (proc.isDetached()) return Promise.reject(new DetachError('detached', 'kill: the VM is detached'));
      proc.kill('SIGKILL');
      return finish();
    },
    detach: detacher(parts, () => finished !== undefined),
    [Symbol.asyncDispose]: async () => {
      if (!proc.isDetached()) await shutdown({ timeoutMs: 5000 });
    },
  };
}
