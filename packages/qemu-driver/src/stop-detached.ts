// Stopping a VM that an earlier (possibly long gone) Node process detached: all we have is its PID and
// run folder, so every step checks that the PID still is that QEMU before touching it.
import { basename, isAbsolute } from 'node:path';
import { runPathsIn } from './argv.js';
import { type Clock, sleep, withTimeout } from './clock.js';
import type { QemuDriverDeps } from './deps.js';
import { DetachError } from './errors.js';
import { defaultDeps } from './node-deps.js';
import { createQmpClient } from './qmp/client.js';
import type { DetachedVm } from './running-vm.js';

export interface StopDetachedOptions {
  /** How long QEMU gets to exit after QMP `quit` before it is SIGKILLed (10 s). */
  readonly timeoutMs?: number;
}

/** `quit`: QEMU flushed its disks and exited; `killed`: SIGKILL; `not-running`: it was already gone. */
export type StopDetachedResult = 'quit' | 'killed' | 'not-running';

const POLL_MS = 20;
const KILL_WAIT_MS = 5000;

/** The PID is still this run's QEMU: its command line names a socket in the run folder. */
function isThatQemu(deps: Pick<QemuDriverDeps, 'readProcCmdline'>, vm: Pick<DetachedVm, 'pid' | 'runDir'>) {
  const cmdline = deps.readProcCmdline(vm.pid);
  return cmdline?.some((arg) => arg.includes(`${vm.runDir}/`)) ?? false;
}

/**
 * Whether a detached VM still runs: its PID is still that QEMU (a zombie has no command line; a reused PID names
 * another folder). For watchers such as a server polling its sessions.
 */
export function detachedVmRunning(
  vm: Pick<DetachedVm, 'pid' | 'runDir'>,
  overrides: Partial<Pick<QemuDriverDeps, 'readProcCmdline'>> = {},
): boolean {
  return isThatQemu({ ...defaultDeps(), ...overrides }, vm);
}

async function waitUntil(clock: Clock, done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = clock.now() + timeoutMs;
  while (!done()) {
    if (clock.now() >= deadline) return false;
    await sleep(clock, POLL_MS);
  }
  return true;
}

/** Connects to the QMP socket in the run folder and sends `quit`; false if QEMU does not take it. */
async function quitOverQmp(deps: QemuDriverDeps, qmpSocket: string, timeoutMs: number): Promise<boolean> {
  try {
    const socket = await withTimeout(
      deps.clock,
      deps.connectUnix(qmpSocket),
      timeoutMs,
      () => new Error('timeout'),
    );
    const qmp = await createQmpClient(socket, {
      clock: deps.clock,
      handshakeTimeoutMs: timeoutMs,
      timeoutMs,
    });
    await qmp.quit();
    await qmp.close();
    return true;
  } catch {
    return false;
  }
}

function checkRunDir(runDir: string): void {
  // The folder is removed recursively: refuse anything that is not a driver run folder.
  if (!isAbsolute(runDir) || !basename(runDir).startsWith('cloudlet-vm-'))
    throw new DetachError('not-a-run-dir', `${runDir} is not a cloudlet-vm-* run folder`);
}

/**
 * Stops a detached VM: QMP `quit` through `<runDir>/qmp.sock`; if QEMU does not exit within the timeout,
 * SIGKILL of `pid`, but only while /proc/PID/cmdline still names `runDir` (a reused PID is left alone).
 * Then removes the run folder. Resolves with how QEMU went.
 */
export async function stopDetachedVm(
  vm: Pick<DetachedVm, 'pid' | 'runDir'>,
  options: StopDetachedOptions = {},
  overrides: Partial<QemuDriverDeps> = {},
): Promise<StopDetachedResult> {
  checkRunDir(vm.runDir);
  const deps: QemuDriverDeps = { ...defaultDeps(), ...overrides };
  const timeoutMs = options.timeoutMs ?? 10_000;
  const gone = () => !isThatQemu(deps, vm);
  let result: StopDetachedResult = 'not-running';
  if (!gone()) {
    const quit = await quitOverQmp(deps, runPathsIn(vm.runDir).qmpSocket, timeoutMs);
    if (quit && (await waitUntil(deps.clock, gone, timeoutMs))) result = 'quit';
    else if (!gone()) {
      deps.signalPid(vm.pid, 'SIGKILL');
      await waitUntil(deps.clock, gone, KILL_WAIT_MS);
      result = 'killed';
    } else result = quit ? 'quit' : 'not-running';
  }
  await deps.removeDir(vm.runDir);
  return result;
}
