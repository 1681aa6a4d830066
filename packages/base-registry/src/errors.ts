/** What went wrong, for callers that branch on it (the CLI maps codes to exit statuses and hints). */
export type RegistryErrorCode =
  /** No base with that id or prefix. */
  | 'not-found'
  /** A prefix that matches more than one base, or that is not hex. */
  | 'bad-id'
  /** disk.raw is missing, empty, not a multiple of 512 bytes, or in an image format other than raw. */
  | 'bad-disk'
  /** memory.snap is missing, does not parse as a migration stream, or is unsupported. */
  | 'bad-memory'
  /** The VM spec fails the schema or does not fit a base (exactly one disk). */
  | 'bad-spec'
  /** A kernel or initrd named by the spec is missing. */
  | 'bad-boot-file'
  /** The import source is not a zip file (or is truncated so that its directory is lost). */
  | 'not-zip'
  /** The zip's members are not exactly the expected set, or one is unsafe (path, type, method). */
  | 'bad-package'
  /** base.json is not valid JSON, fails the schema, or declares sizes beyond the limits. */
  | 'bad-manifest'
  /** Content does not match the hashes or sizes the manifest declares. */
  | 'hash-mismatch'
  /** More bytes than allowed (download, decompressed member). */
  | 'too-large'
  /** The import URL could not be fetched. */
  | 'download-failed'
  /** The export target exists already. */
  | 'exists'
  /** A base folder is damaged (index file unreadable, file missing). */
  | 'corrupt-base'
  /** Misuse: a staging used twice or from another registry, a closed registry. */
  | 'invalid-state'
  /** registry.db was written by a newer schema. */
  | 'unsupported-schema';

/** Every error this package raises on purpose. `message` is one line a user can act on. */
export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** No base matches; `known` lists the ids that do exist, so the message can say what would. */
export class BaseNotFoundError extends RegistryError {
  override name = 'BaseNotFoundError';
  constructor(
    readonly requested: string,
    readonly known: readonly string[],
  ) {
    const have =
      known.length === 0
        ? 'the registry is empty'
        : `known: ${known.map((id) => id.slice(0, 12)).join(', ')}`;
    super('not-found', `no base VM "${requested}" (${have})`);
  }
}
