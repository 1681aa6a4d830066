import { type Clock, sleep } from './clock.js';
import { DetachError, QemuExitedError, QmpError, QmpTimeoutError, SerialTimeoutError } from './errors.js';
import type { QemuProcess } from './qemu-process.js';

// A socket usually notices QEMU's death a little before the process 'exit' event arrives.
const EXIT_GRACE_MS = 1000;

/** QEMU answered, or is merely slow: it is alive, and the error stands as it is. */
function isAliveError(error: unknown): boolean {
  return error instanceof QmpError || error instanceof QmpTimeoutError || error instanceof SerialTimeoutError;
}

function detachedError(during: string): DetachError {
  return new DetachError('detached', `${during}: the VM is detached; this RunningVm no longer controls it`);
}

/** Starts `op` only while QEMU is still ours: after `detach()` nothing may touch it. */
export function whileAttached<T>(
  proc: QemuProcess,
  clock: Clock,
  during: string,
  op: () => Promise<T>,
): Promise<T> {
  if (proc.isDetached()) return Promise.reject(detachedError(during));
  return guarded(proc, clock, during, op());
}

/**
 * Runs `op` against QEMU; if QEMU exits first, or `op` fails and QEMU exits right after, the failure is
 * reported as a QemuExitedError carrying QEMU's stderr (which says why) instead of e.g. "socket closed".
 */
export async function guarded<T>(
  proc: QemuProcess,
  clock: Clock,
  during: string,
  op: Promise<T>,
): Promise<T> {
  if (proc.isDetached()) {
    op.catch(() => {});
    throw detachedError(during);
  }
  const exitedFirst = proc.exited.then((exit): never => {
    throw new QemuExitedError(exit, during);
  });
  try {
    return await Promise.race([op, exitedFirst]);
  } catch (error) {
    if (error instanceof QemuExitedError || isAliveError(error)) throw error;
    const exit = await Promise.race([proc.exited, sleep(clock, EXIT_GRACE_MS).then(() => undefined)]);
    if (exit !== undefined) throw new QemuExitedError(exit, during);
    throw error;
  }
}
