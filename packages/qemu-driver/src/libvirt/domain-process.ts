import { join } from 'node:path';
import { type Clock, sleep } from '../clock.js';
import type { ExitGuard, QemuDriverDeps } from '../deps.js';
import type { QemuExit } from '../errors.js';
import type { QemuProcess } from '../qemu-process.js';
import { startWatchdog } from '../watchdog.js';
import { LibvirtBackendError, type LibvirtConnection } from './connection.js';
import type { DomainGuard, RemoteShell } from './ssh-host.js';

/** Host side of a libvirt-run QEMU that the backend reads (injectable for unit tests). */
export interface DomainHostDeps extends Pick<QemuDriverDeps, 'spawn' | 'shBinary'> {
  readonly clock: Clock;
  readonly exitGuard: ExitGuard;
  /** libvirt's run folder for QEMU domains (QEMU's pid file `<name>.pid`), /run/libvirt/qemu. */
  readonly stateDir: string;
  /** libvirt's per-domain QEMU log (`<name>.log`: command line and QEMU's stderr), /var/log/libvirt/qemu. */
  readonly logDir: string;
  readonly readFileTail: (path: string, maxBytes: number) => string;
  /** true while `pid` is a live process (a zombie is dead: PID 1 here does not reap libvirt's QEMU). */
  readonly processAlive: (pid: number) => boolean;
}

const STDERR_LIMIT = 64 * 1024;
const POLL_MS = 50;
const PID_WAIT_MS = 5000;

async function readPid(deps: DomainHostDeps, name: string): Promise<number> {
  const deadline = deps.clock.now() + PID_WAIT_MS;
  for (;;) {
    const pid = Number.parseInt(deps.readFileTail(join(deps.stateDir, `${name}.pid`), 64).trim(), 10);
    if (Number.isInteger(pid) && pid > 0) return pid;
    if (deps.clock.now() >= deadline) throw new Error(`libvirt wrote no pid file for domain ${name}`);
    await sleep(deps.clock, POLL_MS);
  }
}

async function domainGone(
  deps: Pick<DomainHostDeps, 'clock'>,
  conn: LibvirtConnection,
  name: string,
): Promise<void> {
  const deadline = deps.clock.now() + PID_WAIT_MS;
  while (deps.clock.now() < deadline && (await conn.isActive(name).catch(() => false))) {
    await sleep(deps.clock, POLL_MS);
  }
}

/**
 * A QemuProcess for a QEMU that libvirt started: not our child, so its end is noticed by polling its pid,
 * its stderr is libvirt's domain log, and killing it is `virDomainDestroy`. Node's exit hook destroys it
 * (with `virsh`, synchronously); a SIGKILLed Node runs no hook, so the driver's watchdog (a shell blocked
 * on a pipe from this process) SIGKILLs that QEMU when the pipe ends, and libvirt drops the transient domain.
 * `detach()` releases both: the domain then lives until `stopDetachedVm` (QMP quit on the run folder's socket).
 */
export async function attachDomainProcess(
  deps: DomainHostDeps,
  conn: LibvirtConnection,
  name: string,
  runDir: string,
  removeRunDirOnExit: boolean,
): Promise<QemuProcess> {
  const pid = await readPid(deps, name);
  const logFile = join(deps.logDir, `${name}.log`);
  const stderr = () => deps.readFileTail(logFile, STDERR_LIMIT);
  let exit: QemuExit | undefined;
  let detached = false;
  const untrack = deps.exitGuard.track({
    kill: () => conn.destroyDomainSync(name),
    ...(removeRunDirOnExit ? { runDir } : {}),
  });
  const watchdog = startWatchdog(deps, pid, runDir, removeRunDirOnExit);
  const exited = new Promise<QemuExit>((resolve) => {
    const poll = () => {
      if (detached) return; // no longer ours to watch; `exited` stays pending, as for a detached child
      if (deps.processAlive(pid)) {
        sleep(deps.clock, POLL_MS).then(poll, poll);
        return;
      }
      untrack();
      watchdog.release();
      // libvirt handles the monitor's hang-up a moment later; until then it still lists the domain.
      void domainGone(deps, conn, name).then(() => {
        exit = { code: null, signal: null, stderr: stderr() };
        resolve(exit);
      });
    };
    poll();
  });
  let killed = false;
  return {
    pid,
    exited,
    exit: () => exit,
    stderr,
    kill: () => {
      if (exit !== undefined || killed || detached) return;
      killed = true;
      conn.destroyDomain(name).catch(() => {}); // already gone: the poll notices either way
    },
    detach: () => {
      detached = true;
      untrack();
      watchdog.release();
      void conn.close();
    },
    isDetached: () => detached,
  };
}

/**
 * The QemuProcess of a domain on a remote host (qemu+ssh://): its pid and its end come from the ssh session's
 * guard (see DomainGuard), which also kills it should this process die; the log is read over ssh at the end.
 * Such a VM cannot be detached: its tunnels end with this process.
 */
export async function attachRemoteDomainProcess(
  deps: Pick<DomainHostDeps, 'clock' | 'exitGuard' | 'logDir'>,
  conn: LibvirtConnection,
  shell: RemoteShell,
  guard: DomainGuard,
  name: string,
  runDir: string,
  removeRunDirOnExit: boolean,
): Promise<QemuProcess> {
  const pid = await guard.pid;
  const untrack = deps.exitGuard.track({
    kill: () => conn.destroyDomainSync(name),
    ...(removeRunDirOnExit ? { runDir } : {}),
  });
  const logFile = join(deps.logDir, `${name}.log`);
  let exit: QemuExit | undefined;
  const exited = guard.ended.then(async () => {
    untrack();
    await domainGone(deps, conn, name);
    const stderr = await shell
      .run(`tail -c ${STDERR_LIMIT} "$1" 2>/dev/null || true`, [logFile])
      .catch(() => '');
    exit = { code: null, signal: null, stderr };
    return exit;
  });
  let killed = false;
  return {
    pid,
    exited,
    exit: () => exit,
    stderr: () => exit?.stderr ?? '',
    kill: () => {
      if (exit !== undefined || killed) return;
      killed = true;
      conn.destroyDomain(name).catch(() => guard.close()); // libvirt unreachable: the guard kills it
    },
    detach: () => {
      throw new LibvirtBackendError(
        'unsupported',
        conn.uri,
        'detach',
        `a VM on ${shell.host} cannot be detached: its tunnels end with this process`,
      );
    },
    isDetached: () => false,
  };
}
