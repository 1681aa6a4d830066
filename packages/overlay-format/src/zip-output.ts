import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import yazl from 'yazl';
import { OVERLAY_FORMAT_VERSION } from './manifest.js';
import { tempPathBeside } from './temp-file.js';

/** A zip of stored entries written to a temp file beside `file`, renamed onto `file` only when complete. */
export interface ZipOutput {
  add(name: string, data: Uint8Array): void;
  /** Bytes handed to add() that have not reached the file yet (yazl holds them in memory meanwhile). */
  unwrittenBytes(): number;
  /** Rejects when writing the file fails. */
  readonly failed: Promise<never>;
  /** Ends the zip, waits for the file, renames it into place; returns the zip's size. */
  commit(): Promise<number>;
  /** Stops writing and removes the temp file. */
  discard(): Promise<void>;
}

/** Fixed mtime and mode: the same overlay gives the same bytes. */
const STORED = { compress: false, mtime: new Date(0), mode: 0o100644 } as const;

export function createZipOutput(file: string): ZipOutput {
  const tempPath = tempPathBeside(file);
  const zip = new yazl.ZipFile();
  const out = createWriteStream(tempPath);
  zip.outputStream.pipe(out);
  const written = finished(out);
  let addedBytes = 0;
  return {
    add(name, data) {
      addedBytes += data.length;
      zip.addBuffer(Buffer.from(data.buffer, data.byteOffset, data.byteLength), name, STORED);
    },
    // Headers make bytesWritten run ahead of addedBytes, so this errs on the side of "written".
    unwrittenBytes: () => addedBytes - out.bytesWritten,
    failed: written.then(() => new Promise<never>(() => {})),
    async commit() {
      zip.end({ forceZip64Format: false, comment: `cloudlet VM overlay, format ${OVERLAY_FORMAT_VERSION}` });
      await written;
      await rename(tempPath, file);
      return out.bytesWritten;
    },
    async discard() {
      zip.outputStream.unpipe(out);
      out.destroy();
      await written.catch(() => {});
      await rm(tempPath, { force: true });
    },
  };
}
