import { distillQemuError } from './exit-reason.js';

/** How the QEMU process ended. */
export interface QemuExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** QEMU's stderr (the last 64 KiB). */
  readonly stderr: string;
}

function describeExit(exit: QemuExit): string {
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  return exit.code === null ? 'exited' : `exited with code ${exit.code}`;
}

/**
 * QEMU stopped while an operation needed it. `reason` is distilled from QEMU's stderr
 * (e.g. "memory size differs from the snapshot: … (Size mismatch: pc.ram: 0x8000000 != 0x10000000)").
 */
export class QemuExitedError extends Error {
  override readonly name = 'QemuExitedError';
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly reason: string | undefined;

  constructor(
    exit: QemuExit,
    readonly during: string,
  ) {
    const reason = distillQemuError(exit.stderr);
    super(`QEMU ${describeExit(exit)} during ${during}${reason === undefined ? '' : `: ${reason}`}`);
    this.code = exit.code;
    this.signal = exit.signal;
    this.stderr = exit.stderr;
    this.reason = reason;
  }
}

/** QEMU answered a QMP command with an error; `class` and `desc` are QEMU's. */
export class QmpError extends Error {
  override readonly name = 'QmpError';
  /** QEMU's error class, e.g. "GenericError" or "CommandNotFound". */
  readonly class: string;
  constructor(
    readonly command: string,
    errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
    this.class = errorClass;
  }
}

export class QmpTimeoutError extends Error {
  override readonly name = 'QmpTimeoutError';
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(`QMP ${what} timed out after ${timeoutMs} ms`);
  }
}

/** The QMP connection closed (QEMU quit or died) before the answer arrived. */
export class QmpClosedError extends Error {
  override readonly name = 'QmpClosedError';
  constructor(readonly what: string) {
    super(`QMP connection closed while waiting for ${what}`);
  }
}

/** The awaited text did not appear on the serial console in time; `tail` is what was seen last. */
export class SerialTimeoutError extends Error {
  override readonly name = 'SerialTimeoutError';
  constructor(
    readonly waitingFor: string,
    readonly timeoutMs: number,
    readonly tail: string,
  ) {
    super(`serial console: no ${waitingFor} within ${timeoutMs} ms; last output:\n${tail}`);
  }
}

export class SerialClosedError extends Error {
  override readonly name = 'SerialClosedError';
  constructor(
    readonly waitingFor: string,
    readonly tail: string,
  ) {
    super(`serial console closed while waiting for ${waitingFor}; last output:\n${tail}`);
  }
}

/** QEMU reported the migration as failed or cancelled; `desc` is query-migrate's error-desc. */
export class MigrationFailedError extends Error {
  override readonly name = 'MigrationFailedError';
  constructor(
    readonly status: string,
    readonly desc: string | undefined,
  ) {
    super(`migration ${status}${desc === undefined ? '' : `: ${desc}`}`);
  }
}

export type DetachErrorCode = 'not-detachable' | 'detached' | 'exited' | 'not-a-run-dir';

/**
 * Detaching went wrong: the VM was not launched `detachable`, was already detached (this RunningVm no longer
 * controls it), has exited, or `stopDetachedVm` was given a folder that is no driver run folder.
 */
export class DetachError extends Error {
  override readonly name = 'DetachError';
  constructor(
    readonly code: DetachErrorCode,
    message: string,
  ) {
    super(message);
  }
}
