import { RegistryError } from '@cloudlet/base-registry';
import {
  CloudletServerError,
  GuestScriptError,
  GuestSetupError,
  OverlayMismatchError,
  RamLayoutError,
  SynthesisError,
} from '@cloudlet/core';
import { OverlayFormatError } from '@cloudlet/overlay-format';
import {
  LibvirtBackendError,
  QemuExitedError,
  QmpError,
  SerialTimeoutError,
  VmSpecError,
} from '@cloudlet/qemu-driver';
import { CommanderError, InvalidArgumentError } from 'commander';
import { UsageError } from './prepare.js';

export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** Errors whose message is already a sentence for the user; anything else is a bug and gets its stack. */
const EXPECTED = [
  CloudletServerError,
  RegistryError,
  GuestScriptError,
  GuestSetupError,
  RamLayoutError,
  OverlayMismatchError,
  SynthesisError,
  OverlayFormatError,
  InvalidArgumentError,
  QemuExitedError,
  QmpError,
  SerialTimeoutError,
  VmSpecError,
  UsageError,
  LibvirtBackendError,
];

/** Prints one clear line for an error and returns the exit code. */
export function reportError(error: unknown, debug = process.env.CLOUDLET_DEBUG !== undefined): number {
  if (error instanceof CommanderError) {
    // commander printed the message (or the help) already
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  const known = EXPECTED.some((kind) => error instanceof kind);
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`cloudlet: error: ${message.split('\n')[0]}\n`);
  if (error instanceof QemuExitedError && error.stderr.trim() !== '') {
    process.stderr.write(`QEMU said:\n${error.stderr.trim()}\n`);
  }
  if (debug || !known) process.stderr.write(`${error instanceof Error ? error.stack : ''}\n`);
  return error instanceof UsageError ? EXIT_USAGE : EXIT_ERROR;
}
