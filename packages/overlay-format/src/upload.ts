import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { OverlayFormatError } from './errors.js';
import { type LocalEntry, readLocalHeader, signatureAt } from './local-header.js';
import type { OverlayManifest } from './manifest.js';
import {
  CHUNK_INDEX,
  checkChunkIndex,
  checkEntries,
  checkEntrySize,
  checkManifestSize,
  checkSegmentOrder,
  declaredEntries,
  MANIFEST,
  parseManifest,
} from './overlay-checks.js';
import { createReader, type OverlayReader } from './reader.js';
import { spoolUpload, type UploadSpool } from './upload-spool.js';
import { openZipDirectory } from './zip-directory.js';

export interface OverlayUploadOptions {
  /** Where the body is spooled (one file, removed on abort, failure and close). */
  spoolDir: string;
  /** Refuses a body, or a manifest declaring entries, beyond this many bytes. */
  maxBytes: number;
  /** Fails the upload after this long without data; default 30 000. */
  idleTimeoutMs?: number;
  /** Decompression threads of the reader; default 2. */
  workers?: number;
  onBytes?: (received: number) => void;
  /** Once the whole body has arrived and checked out, the spool file is renamed to this path (same filesystem) and kept. */
  keepFile?: string;
}

export interface OverlayUpload {
  /** Its reads wait for their bytes; records are checked exactly as openOverlay's reader checks them. */
  reader: OverlayReader;
  /** Resolves when the body has ended and its central directory matches the entries read as they arrived. */
  done: Promise<void>;
  bytesReceived(): number;
  /** Stops reading the body, rejects every waiting read, removes the spool file. */
  abort(reason?: unknown): Promise<void>;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const asError = (e: unknown) =>
  e instanceof OverlayFormatError
    ? e
    : new OverlayFormatError('truncated', String((e as Error)?.message ?? e), { cause: e });

/**
 * Reads an overlay from a request body while it arrives. Resolves once the manifest, the chunk index
 * and the blobs are in and checked; segment reads then wait for their bytes. Needs the layout this
 * writer makes: manifest.json first, chunk-index.bin, blobs, segments, then the central directory.
 */
export async function openOverlayUpload(
  body: AsyncIterable<Uint8Array>,
  options: OverlayUploadOptions,
): Promise<OverlayUpload> {
  const { maxBytes, idleTimeoutMs = 30_000, workers = 2 } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new RangeError(`maxBytes ${maxBytes}`);
  if (!(idleTimeoutMs > 0)) throw new RangeError(`idleTimeoutMs ${idleTimeoutMs}`);
  if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`workers ${workers}`);
  const spool = await spoolUpload(body, {
    spoolDir: options.spoolDir,
    maxBytes,
    idleTimeoutMs,
    onBytes: options.onBytes,
  });
  try {
    const manifestEntry = await firstEntry(spool);
    checkManifestSize(manifestEntry.size);
    const manifestBytes = await spool.read(manifestEntry.dataStart, manifestEntry.size);
    // No sha256 covers the manifest: its CRC-32 is its only check (yauzl makes the same one for files).
    if (crc32(manifestBytes) !== manifestEntry.crc32)
      throw new OverlayFormatError('hash-mismatch', `${MANIFEST} does not match its CRC-32`);
    const manifest = parseManifest(manifestBytes);
    const entries = new Entries(spool, manifest, manifestEntry, maxBytes);
    const index = checkChunkIndex(await entries.read(CHUNK_INDEX), manifest);
    for (const blob of manifest.blobs)
      if (sha256(await entries.read(blob.entry)) !== blob.sha256)
        throw new OverlayFormatError(
          'hash-mismatch',
          `entry "${blob.entry}" does not match its sha256 in the manifest`,
        );
    const done = entries.parsed.then((end) => checkDirectory(spool, manifest, entries.located, end));
    const finished = done.then(
      async () => {
        if (options.keepFile !== undefined) await spool.keep(options.keepFile);
      },
      // Rejects once the spool file is gone, with the first error (the cause, not a read it broke).
      async (e: unknown) => {
        await spool.fail(asError(e));
        throw spool.failure() ?? e;
      },
    );
    finished.catch(() => {}); // the caller may only care about the reads
    const reader = createReader({ read: (name) => entries.read(name), manifest, index, workers }, () =>
      spool.close(),
    );
    return {
      reader,
      done: finished,
      bytesReceived: () => spool.received(),
      abort: (reason) =>
        spool.fail(
          new OverlayFormatError(
            'aborted',
            `the upload was aborted${reason === undefined ? '' : `: ${String(reason)}`}`,
            {
              cause: reason,
            },
          ),
        ),
    };
  } catch (e) {
    await spool.fail(asError(e));
    throw e;
  }
}

async function firstEntry(spool: UploadSpool): Promise<LocalEntry> {
  const signature = await signatureAt(spool, 0).catch((e: unknown) => {
    throw e instanceof OverlayFormatError && e.code === 'truncated'
      ? new OverlayFormatError('not-zip', `the upload is not a zip (${spool.received()} bytes received)`, {
          cause: e,
        })
      : e;
  });
  if (signature !== 'local') throw new OverlayFormatError('not-zip', 'the upload is not a zip file');
  const entry = await readLocalHeader(spool, 0);
  if (entry.name !== MANIFEST)
    throw new OverlayFormatError(
      'not-streamable',
      `upload is not a streamable overlay (${MANIFEST} must be the first entry); re-create it with this version`,
    );
  return entry;
}

/**
 * Walks the local headers in the order the writer puts them, as their bytes arrive, checking each
 * against the manifest; a read of an entry waits until its header has been reached.
 */
class Entries {
  readonly located = new Map<string, LocalEntry>();
  /** Resolves with the offset just past the last entry's data. */
  readonly parsed: Promise<number>;
  private readonly waiting = new Map<
    string,
    { resolve: (e: LocalEntry) => void; reject: (e: unknown) => void }
  >();
  private readonly promises = new Map<string, Promise<LocalEntry>>();

  constructor(
    private readonly spool: UploadSpool,
    manifest: OverlayManifest,
    manifestEntry: LocalEntry,
    maxBytes: number,
  ) {
    const order = [
      CHUNK_INDEX,
      ...manifest.blobs.map((b) => b.entry),
      ...manifest.segments.map((s) => s.entry),
    ];
    for (const name of order)
      this.promises.set(
        name,
        new Promise<LocalEntry>((resolve, reject) => this.waiting.set(name, { resolve, reject })),
      );
    for (const p of this.promises.values()) p.catch(() => {});
    this.located.set(MANIFEST, manifestEntry);
    const declared = declaredEntries(manifest);
    checkSegmentOrder(manifest);
    // Refused before anything more arrives: these are only the data bytes, headers come on top.
    const total = [...declared.values()].reduce((n, e) => n + Math.max(0, e.compressed), manifestEntry.size);
    if (total > maxBytes)
      throw new OverlayFormatError(
        'too-large',
        `the manifest declares ${total} bytes of entries, above the upload's ${maxBytes}-byte limit`,
      );
    this.parsed = this.walk(order, declared, manifestEntry.dataStart + manifestEntry.size);
    this.parsed.catch((e: unknown) => {
      for (const w of this.waiting.values()) w.reject(e);
      void spool.fail(asError(e));
    });
  }

  async read(name: string): Promise<Uint8Array> {
    const entry = this.located.get(name) ?? (await this.promises.get(name));
    if (entry === undefined)
      throw new OverlayFormatError('invalid-use', `the overlay has no entry "${name}"`);
    return this.spool.read(entry.dataStart, entry.size);
  }

  private async walk(
    order: string[],
    declared: ReturnType<typeof declaredEntries>,
    start: number,
  ): Promise<number> {
    let offset = start;
    for (const name of order) {
      if ((await signatureAt(this.spool, offset)) === 'central')
        throw new OverlayFormatError('bad-entries', `missing entry "${name}"`);
      const entry = await readLocalHeader(this.spool, offset);
      if (entry.name !== name)
        throw new OverlayFormatError(
          declared.has(entry.name) ? 'not-streamable' : 'bad-entries',
          declared.has(entry.name)
            ? `entry "${entry.name}" arrived where "${name}" was expected (entries must be in streaming order)`
            : `unexpected entry "${entry.name}"`,
        );
      checkEntrySize(name, entry.size, declared);
      this.located.set(name, entry);
      this.waiting.get(name)?.resolve(entry);
      this.waiting.delete(name);
      offset = entry.dataStart + entry.size;
    }
    return offset;
  }
}

/** After the body: its central directory must list exactly the entries read, at the same offsets, sizes and CRCs. */
async function checkDirectory(
  spool: UploadSpool,
  manifest: OverlayManifest,
  located: Map<string, LocalEntry>,
  end: number,
): Promise<void> {
  if ((await signatureAt(spool, end)) !== 'central')
    throw new OverlayFormatError(
      'bad-entries',
      `bytes after the last entry (at ${end}) are not the zip directory`,
    );
  const zip = await openZipDirectory(spool, located.size).catch((e: unknown) => {
    const error = asError(e);
    throw new OverlayFormatError(
      error.code,
      `the upload ended after ${spool.received()} bytes: ${error.message}`,
      {
        cause: e,
      },
    );
  });
  try {
    const entries = checkEntries(zip, manifest);
    for (const [name, local] of located) {
      const central = entries.get(name)?.entry;
      if (
        central === undefined ||
        central.relativeOffsetOfLocalHeader !== local.headerStart ||
        central.compressedSize !== local.size ||
        central.crc32 !== local.crc32
      )
        throw new OverlayFormatError(
          'bad-entries',
          `the zip directory's entry "${name}" differs from its local header (offset, size or CRC-32)`,
        );
    }
  } finally {
    zip.close();
  }
}
