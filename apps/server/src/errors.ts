// Every error the API answers with has one shape, { error, message, status }; library errors keep their code.
import { RegistryError } from '@cloudlet/base-registry';
import { OverlayMismatchError, type RemoteError, SynthesisError } from '@cloudlet/core';
import { OverlayFormatError } from '@cloudlet/overlay-format';
import { QemuExitedError, VmSpecError } from '@cloudlet/qemu-driver';

/** An answer other than success, raised anywhere in a route or a session. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** Synthesis refusals that say the overlay does not fit this cloudlet: the client sent the wrong thing. */
const CONFLICT = new Set([
  'unknown-base',
  'base-mismatch',
  'host-incompatible',
  'layout-mismatch',
  'bad-size',
  'no-display',
]);

/** What a failure of a session or a request becomes on the wire. */
export function toRemoteError(error: unknown): RemoteError {
  if (error instanceof HttpError) return { error: error.code, message: error.message, status: error.status };
  if (error instanceof SynthesisError) {
    const status = CONFLICT.has(error.code)
      ? 409
      : error.code === 'no-space' || error.code === 'disk-full'
        ? 507
        : 500;
    return { error: error.code, message: error.message, status };
  }
  if (error instanceof OverlayMismatchError)
    return { error: 'overlay-mismatch', message: error.message, status: 409 };
  if (error instanceof RegistryError)
    return { error: error.code, message: error.message, status: error.code === 'not-found' ? 409 : 400 };
  if (error instanceof OverlayFormatError) {
    // The URL could not be fetched: the server's upstream failed, not the request.
    const status =
      error.code === 'http-error' || error.code === 'not-found'
        ? 502
        : error.code === 'too-large'
          ? 413
          : 422;
    return { error: `overlay-${error.code}`, message: error.message, status };
  }
  if (error instanceof VmSpecError) return { error: 'bad-spec', message: error.message, status: 422 };
  if (error instanceof QemuExitedError) return { error: 'qemu-exited', message: error.message, status: 500 };
  if (error instanceof Error && error.name === 'AbortError')
    return { error: 'aborted', message: error.message, status: 499 };
  return { error: 'internal', message: error instanceof Error ? error.message : String(error), status: 500 };
}
