/** The overlay does not fit the base it is applied to (wrong base, RAM layout, sizes, references). */
export class OverlayMismatchError extends Error {
  override readonly name = 'OverlayMismatchError';
}

export type SynthesisErrorCode =
  | 'unknown-base'
  | 'base-mismatch'
  | 'host-incompatible'
  | 'layout-mismatch'
  | 'bad-size'
  | 'no-space'
  | 'disk-full'
  | 'not-detached'
  | 'bad-work-dir'
  | 'no-display'
  | 'bad-options'
  | 'segment-failed';

/** Synthesis refused or failed for a reason the caller can act on; `code` says which. */
export class SynthesisError extends Error {
  override readonly name = 'SynthesisError';
  constructor(
    readonly code: SynthesisErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
