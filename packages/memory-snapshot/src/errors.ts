/** What went wrong, coarse enough to branch on. */
export type MigrationStreamErrorCode =
  /** The stream does not start with "QEVM". */
  | 'bad-magic'
  /** The file version is not 3. */
  | 'bad-version'
  /** A configuration subsection we cannot skip (vmstate bodies are not self-delimiting). */
  | 'unknown-subsection'
  /** A section type, section id or section name that does not belong at this point. */
  | 'unexpected-section'
  /** A section footer (0x7e + section id) is missing or names the wrong section. */
  | 'bad-footer'
  /** A RAM record header carries flags this reader does not handle (XBZRLE, compression, ...). */
  | 'unknown-flags'
  /** A page names a RAM block absent from the block table (or CONTINUE with no previous block). */
  | 'unknown-block'
  /** The RAM block table is inconsistent (duplicate names, lengths not adding up to MEM_SIZE). */
  | 'bad-block-table'
  /** A length, offset or count outside sane bounds (or above a configured cap). */
  | 'absurd-size'
  /** The stream ended before it was complete. */
  | 'truncated'
  /** Writer input: the device tail is not a sequence of device sections ending in QEMU_VM_EOF. */
  | 'bad-device-tail'
  /** Writer input: the prologue's fields disagree with its raw configuration bytes. */
  | 'inconsistent-prologue';

/**
 * Malformed (or unwritable) migration stream. `offset` is the byte offset in the stream where the
 * problem was found: the start of the offending field, or for 'truncated' the number of bytes received.
 * The writer reports the offset in the output it was about to produce.
 */
export class MigrationStreamError extends Error {
  override readonly name = 'MigrationStreamError';

  constructor(
    readonly code: MigrationStreamErrorCode,
    readonly offset: number,
    detail: string,
  ) {
    super(`${code} at byte ${offset}: ${detail}`);
  }
}
