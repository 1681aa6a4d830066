import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import yazl from 'yazl';
import { OVERLAY_FORMAT_VERSION } from './manifest.js';
import { tempPathBeside } from './temp-file.js';

/**
 * A zip of stored entries, assembled only at commit: entries staged while the overlay is written go to
 * a staging file, because the entries that must come first (the manifest with every segment's sha256)
 * are known only at the end. The zip is a temp file beside `file`, renamed onto it when complete.
 */
export interface ZipOutput {
  /** Appends an entry's bytes to the staging file (calls must not overlap). */
  stage(name: string, data: Uint8Array): Promise<void>;
  /** Writes `head` first, then the staged entries in `order`, ends the zip, renames it into place; returns its size. */
  commit(head: readonly { name: string; data: Uint8Array }[], order: readonly string[]): Promise<number>;
  /** Stops writing and removes the temp files. */
  discard(): Promise<void>;
}

/** Fixed mtime and mode: the same overlay gives the same bytes. */
const STORED = { compress: false, mtime: new Date(0), mode: 0o100644 } as const;
/** yazl holds every added buffer until the file stream takes it: stay this far ahead of the disk at most. */
const MAX_UNWRITTEN_BYTES = 16 * 1024 * 1024;

export function createZipOutput(file: string): ZipOutput {
  const tempPath = tempPathBeside(file);
  const stagingPath = tempPathBeside(`${file}.staging`);
  const staging = open(stagingPath, 'wx+');
  staging.catch(() => {}); // surfaces at the first stage() or commit()
  const staged = new Map<string, { offset: number; length: number }>();
  let stagedBytes = 0;
  let out: ReturnType<typeof createWriteStream> | undefined;

  const closeStaging = async () => {
    const handle = await staging.catch(() => undefined);
    await handle?.close().catch(() => {});
    await rm(stagingPath, { force: true });
  };

  return {
    async stage(name, data) {
      const handle = await staging;
      await handle.write(data, 0, data.length, stagedBytes);
      staged.set(name, { offset: stagedBytes, length: data.length });
      stagedBytes += data.length;
    },

    async commit(head, order) {
      const handle = await staging;
      const zip = new yazl.ZipFile();
      const stream = createWriteStream(tempPath, { flags: 'wx' });
      out = stream;
      zip.outputStream.pipe(stream);
      const written = finished(stream);
      written.catch(() => {}); // awaited below; a failure also stops the loop through `errored`
      let addedBytes = 0;
      // addBuffer, never a stream: yazl then puts the CRC-32 and sizes in the local header (no data
      // descriptor), which is what lets a sequential reader of an upload find each entry's end.
      const add = (name: string, data: Uint8Array) => {
        addedBytes += data.length;
        zip.addBuffer(Buffer.from(data.buffer, data.byteOffset, data.byteLength), name, STORED);
      };
      for (const { name, data } of head) add(name, data);
      for (const name of order) {
        const at = staged.get(name);
        if (at === undefined) throw new Error(`no staged entry ${name}`);
        const data = Buffer.allocUnsafe(at.length);
        if (at.length > 0) await handle.read(data, 0, at.length, at.offset);
        add(name, data);
        // Headers make bytesWritten run ahead of addedBytes, so this errs on the side of "written".
        while (addedBytes - stream.bytesWritten > MAX_UNWRITTEN_BYTES && stream.errored === null)
          await new Promise((resolve) => setTimeout(resolve, 2));
      }
      zip.end({ forceZip64Format: false, comment: `cloudlet VM overlay, format ${OVERLAY_FORMAT_VERSION}` });
      await written;
      await closeStaging();
      await rename(tempPath, file);
      return stream.bytesWritten;
    },

    async discard() {
      if (out !== undefined) {
        out.destroy();
        await finished(out).catch(() => {});
      }
      await closeStaging();
      await rm(tempPath, { force: true });
    },
  };
}
