/** What is wrong, for callers that branch on it (the CLI maps codes to hints and exit statuses). */
export type OverlayFormatErrorCode =
  /** openOverlaySource: a local path that does not exist. */
  | 'not-found'
  /** The source is not a zip at all. */
  | 'not-zip'
  /** The zip is cut short or its directory is damaged. */
  | 'truncated'
  /** An entry is unsafe (zip-slip name, directory, link, encrypted) or not stored. */
  | 'bad-entry'
  /** Entries are not exactly the ones the manifest lists (missing, extra, duplicate). */
  | 'bad-entries'
  /** manifest.json is not JSON, fails the schema, or has another formatVersion. */
  | 'bad-manifest'
  /** A size in the zip directory, the manifest or the data disagrees, or is beyond the caps. */
  | 'bad-size'
  /** A sha256 does not match the manifest. */
  | 'hash-mismatch'
  /** Compressed data does not decompress (corrupt, truncated, or larger than declared). */
  | 'bad-compressed-data'
  /** A record (or the chunk index) is malformed or out of range for the manifest's sizes. */
  | 'bad-record'
  /** The writer was used wrongly (record order, duplicate chunk, bad blob name, use after finish). */
  | 'invalid-use'
  /** An HTTP source answered with an unexpected status, a bad Content-Range, or failed / timed out. */
  | 'http-error'
  /** An HTTP server ignored Range (HTTP 200); callers fall back to streaming the whole overlay. */
  | 'no-range-support'
  /** openOverlayUpload: the zip is not laid out to be read as it arrives (manifest-last, data descriptors). */
  | 'not-streamable'
  /** openOverlayUpload: the body, or the sizes the manifest declares, exceed `maxBytes`. */
  | 'too-large'
  /** openOverlayUpload: no data arrived for `idleTimeoutMs`. */
  | 'timeout'
  /** openOverlayUpload: abort() or close() stopped the upload. */
  | 'aborted';

/** Every error this package raises on purpose; `message` is one line a user can act on. */
export class OverlayFormatError extends Error {
  override name = 'OverlayFormatError';
  constructor(
    readonly code: OverlayFormatErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
