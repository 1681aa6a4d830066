import { Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { ChunkSource } from './chunk-source.js';
import { OverlayFormatError } from './errors.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const MADE_BY_UNIX = 3;
const DOS_DIRECTORY = 0x10;

/** One entry of the zip's central directory, with where its stored bytes start. */
export interface ZipEntry {
  name: string;
  /** Stored: compressed size = uncompressed size. */
  size: number;
  entry: yauzl.Entry;
}

/** yauzl reading through a ChunkSource, so the same checks run on files and HTTP ranges. */
class SourceReader extends yauzl.RandomAccessReader {
  constructor(private readonly source: ChunkSource) {
    super();
  }
  override _readStreamForRange(start: number, end: number): Readable {
    const source = this.source;
    return Readable.from(
      (async function* () {
        if (end > start) yield Buffer.from(await source.read(start, end - start));
      })(),
    );
  }
}

const badEntry = (message: string) => new OverlayFormatError('bad-entry', message);
const shown = (raw: Buffer) => JSON.stringify(raw.toString('utf8'));

/**
 * Why an entry is unacceptable, or undefined. Checks the raw name bytes, so no decoding quirk
 * (CP437, Unicode path extra fields) can smuggle another path past them. Same rules as
 * base-registry's package reader (duplicated on purpose: leaf packages do not import each other).
 */
function entryProblem(entry: yauzl.Entry): string | undefined {
  const raw = entry.fileNameRaw;
  const problem =
    nameProblem(raw) ??
    storageProblem(
      raw,
      entry.generalPurposeBitFlag,
      entry.compressionMethod,
      entry.compressedSize,
      entry.uncompressedSize,
    );
  if (problem !== undefined) return problem;
  if ((entry.externalFileAttributes & DOS_DIRECTORY) !== 0) return `unexpected directory ${shown(raw)}`;
  const unixType = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (entry.versionMadeBy >>> 8 === MADE_BY_UNIX && unixType !== 0 && unixType !== S_IFREG)
    return `entry ${shown(raw)} is not a regular file`;
  return undefined;
}

/** Zip-slip and odd names, from the raw bytes (local headers of an upload are checked with it too). */
export function nameProblem(raw: Buffer): string | undefined {
  const name = raw.toString('latin1');
  if (name.includes('\\')) return `unsafe entry name ${shown(raw)} (backslash)`;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name))
    return `unsafe entry name ${shown(raw)} (absolute path)`;
  if (name.split('/').includes('..')) return `unsafe entry name ${shown(raw)} (parent directory "..")`;
  if (/[^\x21-\x7e]/.test(name)) return `unexpected characters in entry name ${shown(raw)}`;
  if (name.endsWith('/')) return `unexpected directory ${shown(raw)}`;
  return undefined;
}

/** Encrypted, deflated, or sizes that a stored entry cannot have. */
export function storageProblem(
  raw: Buffer,
  flags: number,
  method: number,
  compressedSize: number,
  size: number,
): string | undefined {
  if ((flags & 0x1) !== 0) return `entry ${shown(raw)} is encrypted`;
  if (method !== 0)
    return `entry ${shown(raw)} uses zip compression method ${method}; overlay entries are stored`;
  if (compressedSize !== size)
    return `stored entry ${shown(raw)} has compressed size ${compressedSize} ≠ size ${size}`;
  return undefined;
}

export interface ZipDirectory {
  entries: Map<string, ZipEntry>;
  /** The entry's bytes as stored, read straight from the source (one range). */
  read(entry: ZipEntry): Promise<Uint8Array>;
  /** Through yauzl's stream, which checks the CRC-32 (for manifest.json, which no hash covers). */
  readChecked(entry: ZipEntry): Promise<Uint8Array>;
  close(): void;
}

export async function openZipDirectory(source: ChunkSource, maxEntries: number): Promise<ZipDirectory> {
  const size = await source.size();
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(new SourceReader(source), size, {
      decodeStrings: false,
      validateEntrySizes: true,
      autoClose: false,
      lazyEntries: true,
    });
  } catch (e) {
    throw await notAZip(source, size, e);
  }
  try {
    if (zip.entryCount > maxEntries)
      throw new OverlayFormatError(
        'bad-entries',
        `the zip has ${zip.entryCount} entries, above the cap ${maxEntries}`,
      );
    const entries = new Map<string, ZipEntry>();
    try {
      for await (const entry of zip.eachEntry()) {
        const problem = entryProblem(entry);
        if (problem !== undefined) throw badEntry(problem);
        const name = entry.fileNameRaw.toString('latin1');
        if (entries.has(name)) throw new OverlayFormatError('bad-entries', `duplicate entry "${name}"`);
        entries.set(name, { name, size: entry.compressedSize, entry });
      }
    } catch (e) {
      if (e instanceof OverlayFormatError) throw e;
      throw new OverlayFormatError('truncated', `damaged zip directory (${(e as Error).message})`, {
        cause: e,
      });
    }
    return {
      entries,
      async read({ name, size: length, entry }) {
        try {
          const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
          if (fileDataStart + length > size)
            throw new OverlayFormatError('truncated', `entry "${name}" runs past the end of the zip`);
          return length === 0 ? new Uint8Array(0) : await source.read(fileDataStart, length);
        } catch (e) {
          if (e instanceof OverlayFormatError) throw e;
          throw new OverlayFormatError('truncated', `cannot read entry "${name}" (${(e as Error).message})`, {
            cause: e,
          });
        }
      },
      async readChecked({ name, entry }) {
        const parts: Buffer[] = [];
        try {
          for await (const part of await zip.openReadStreamPromise(entry)) parts.push(part as Buffer);
        } catch (e) {
          throw new OverlayFormatError('truncated', `cannot read entry "${name}" (${(e as Error).message})`, {
            cause: e,
          });
        }
        return Buffer.concat(parts);
      },
      close: () => zip.close(),
    };
  } catch (e) {
    zip.close();
    throw e;
  }
}

async function notAZip(source: ChunkSource, size: number, cause: unknown): Promise<OverlayFormatError> {
  let head: Uint8Array = new Uint8Array(0);
  try {
    head = await source.read(0, Math.min(4, size));
  } catch {
    // Unreadable: reported with yauzl's reason.
  }
  const why = (cause as Error).message;
  return Buffer.from(head).equals(Buffer.from('PK\x03\x04', 'latin1'))
    ? new OverlayFormatError('truncated', `truncated or damaged zip (${why})`, { cause })
    : new OverlayFormatError('not-zip', `not a zip file (${why})`, { cause });
}
