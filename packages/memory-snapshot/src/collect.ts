import { MigrationStreamError } from './errors.js';
import { readMigrationStream } from './reader.js';
import type { MigrationStreamLimits, RamPage, StreamPrologue } from './types.js';

/** A whole migration stream held in memory: what the writer needs to re-emit it. */
export interface CollectedMigrationStream {
  prologue: StreamPrologue;
  /** Pages in stream order; zero pages only when `keepZeroPages` was set. */
  pages: RamPage[];
  /** Number of zero-page records seen (kept or not). */
  zeroPages: number;
  deviceTail: Uint8Array;
  vmdesc?: Uint8Array;
  /** Bytes read from the source. */
  bytes: number;
}

export interface CollectOptions {
  /** Keep zero pages in `pages` (default false: a fresh destination's RAM is zero already). */
  keepZeroPages?: boolean;
  limits?: MigrationStreamLimits;
}

/** Counts bytes on their way into the reader without copying them. */
async function* counted(source: AsyncIterable<Uint8Array>, total: { bytes: number }) {
  for await (const chunk of source) {
    total.bytes += chunk.length;
    yield chunk;
  }
}

/**
 * Reads a whole stream into memory. Meant for small guests (tests, tools); pipelines that must not hold a
 * snapshot in memory use `readMigrationStream` directly.
 */
export async function collectMigrationStream(
  source: AsyncIterable<Uint8Array>,
  options: CollectOptions = {},
): Promise<CollectedMigrationStream> {
  const total = { bytes: 0 };
  const pages: RamPage[] = [];
  let prologue: StreamPrologue | undefined;
  let deviceTail: Uint8Array | undefined;
  let vmdesc: Uint8Array | undefined;
  let zeroPages = 0;
  for await (const item of readMigrationStream(counted(source, total), options.limits)) {
    if (item.kind === 'prologue') prologue = item.prologue;
    else if (item.kind === 'deviceTail') deviceTail = item.bytes;
    else if (item.kind === 'vmdesc') vmdesc = item.json;
    else if (item.page.data !== null) pages.push(item.page);
    else {
      zeroPages++;
      if (options.keepZeroPages === true) pages.push(item.page);
    }
  }
  // The reader only ends without these after raising, so this guards the types, not a real case.
  if (prologue === undefined || deviceTail === undefined) {
    throw new MigrationStreamError('truncated', total.bytes, 'stream ended before its device state');
  }
  return {
    prologue,
    pages,
    zeroPages,
    deviceTail,
    bytes: total.bytes,
    ...(vmdesc === undefined ? {} : { vmdesc }),
  };
}
