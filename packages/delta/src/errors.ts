/** What is wrong with a chunk index file, coarse enough to branch on. */
export type ChunkIndexErrorCode =
  /** The file does not start with the chunk index magic (not an index file, or another format). */
  | 'bad-magic'
  /** A format version this reader does not know. */
  | 'unsupported-version'
  /** A header field out of range or inconsistent with another (chunk size, kind, counts). */
  | 'bad-header'
  /** The file is shorter than its header says. */
  | 'truncated'
  /** The file is longer than its header says. */
  | 'trailing-bytes'
  /** The hash array does not match the digest recorded in the header. */
  | 'checksum-mismatch';

/** A chunk index file that cannot be trusted. Names the file and the problem. */
export class ChunkIndexError extends Error {
  override readonly name = 'ChunkIndexError';

  constructor(
    readonly code: ChunkIndexErrorCode,
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${code}: ${detail}`);
  }
}
