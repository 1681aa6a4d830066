// The writer's file access, injectable so tests can play a full disk, and the error type it reports.
import { open, rm } from 'node:fs/promises';

/** The part of a FileHandle the writer uses. */
export interface Qcow2File {
  write(
    data: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
  read(into: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface Qcow2WriterDeps {
  /** Creates (or truncates) the image file for reading and writing. */
  readonly open: (path: string) => Promise<Qcow2File>;
  /** Removes a partial image after a failed write. */
  readonly remove: (path: string) => Promise<void>;
}

export const nodeQcow2Deps: Qcow2WriterDeps = {
  open: (path) => open(path, 'w+'),
  remove: (path) => rm(path, { force: true }),
};

export type Qcow2WriterErrorCode =
  | 'invalid-options'
  | 'misaligned'
  | 'out-of-range'
  | 'rewrite'
  | 'closed'
  | 'disk-full'
  | 'io';

/** A misuse of the writer, or a failed write to the image file; `code` says which. */
export class Qcow2WriterError extends Error {
  override readonly name = 'Qcow2WriterError';
  constructor(
    readonly code: Qcow2WriterErrorCode,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** ENOSPC (and a full quota) as 'disk-full' naming the file; any other failure as 'io'. */
export function fileError(path: string, what: string, error: unknown): Qcow2WriterError {
  if (error instanceof Qcow2WriterError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new Qcow2WriterError('disk-full', `${path}: the disk is full (${code}) while ${what}`, {
      cause: error,
    });
  const message = error instanceof Error ? error.message : String(error);
  return new Qcow2WriterError('io', `${path}: ${what} failed: ${message}`, { cause: error });
}

/** Positional writes may be short; loop until every byte is down. */
export async function writeFully(file: Qcow2File, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Positional reads may be short too; a read past the end of the file is a bug in the caller. */
export async function readFully(file: Qcow2File, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`short read at ${position + done}`);
    done += bytesRead;
  }
}
