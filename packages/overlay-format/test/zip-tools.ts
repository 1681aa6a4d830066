import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
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

/** Where entry `name` lies in the file: its local header at `start`, its data [dataStart, end). */
export async function entrySpan(
  file: string,
  name: string,
): Promise<{ start: number; dataStart: number; end: number }> {
  const zip = await yauzl.openPromise(file, { autoClose: false });
  let found: { offset: number; size: number } | undefined;
  for await (const entry of zip.eachEntry()) {
    if (entry.fileName === name)
      found = { offset: entry.relativeOffsetOfLocalHeader, size: entry.compressedSize };
  }
  zip.close();
  if (found === undefined) throw new Error(`no entry ${name} in ${file}`);
  const handle = await open(file);
  try {
    const header = Buffer.alloc(30);
    await handle.read(header, 0, 30, found.offset);
    const variable = header.readUInt16LE(26) + header.readUInt16LE(28); // name + extra field lengths
    const dataStart = found.offset + 30 + variable;
    return { start: found.offset, dataStart, end: dataStart + found.size };
  } finally {
    await handle.close();
  }
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
