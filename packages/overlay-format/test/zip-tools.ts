import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import yauzl from 'yauzl';
import yazl from 'yazl';

export interface RawEntry {
  name: string;
  data: Buffer;
  /** Deflate it (overlays never do). */
  compress?: boolean;
}

/** Every entry's stored bytes, in zip order. */
export async function readZip(file: string): Promise<RawEntry[]> {
  const zip = await yauzl.openPromise(file, { autoClose: false });
  const out: RawEntry[] = [];
  for await (const entry of zip.eachEntry()) {
    const parts: Buffer[] = [];
    for await (const part of await zip.openReadStreamPromise(entry)) parts.push(part as Buffer);
    out.push({ name: entry.fileName, data: Buffer.concat(parts) });
  }
  zip.close();
  return out;
}

/** Writes entries with yazl directly, bypassing every check the overlay writer makes. */
export async function writeZip(file: string, entries: RawEntry[]): Promise<void> {
  const zip = new yazl.ZipFile();
  const out = createWriteStream(file);
  zip.outputStream.pipe(out);
  for (const e of entries)
    zip.addBuffer(e.data, e.name, { compress: e.compress ?? false, mtime: new Date(0) });
  zip.end();
  await finished(out);
}
