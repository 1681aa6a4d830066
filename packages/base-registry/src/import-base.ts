import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHUNK_SIZE, type ChunkIndex, createChunkIndex, createChunkIndexBuilder } from '@cloudlet/delta';
import type { RegistryContext } from './context.js';
import { rowById } from './database.js';
import { downloadTo } from './download.js';
import { RegistryError } from './errors.js';
import { finishBase } from './finish-base.js';
import { BASE_FILES } from './layout.js';
import { BASE_LIMITS } from './limits.js';
import type { BaseManifest } from './manifest.js';
import { BULK_MEMBERS, type BulkFile, bulkFilesOf } from './package-format.js';
import { type OpenPackage, openPackage } from './package-reader.js';
import type { ProgressListener } from './progress.js';
import { sparseFileSink } from './sparse-file-sink.js';
import { tempName } from './temp-owner.js';
import { decompressZstd } from './zstd-decompress.js';

export interface ImportOptions {
  onProgress?: ProgressListener;
  /**
   * Most bytes the import may write: the download, and separately the decompressed base.
   * Default: the registry limits (disk + memory snapshot + boot files).
   */
  maxBytes?: number;
  signal?: AbortSignal;
}

const DEFAULT_MAX_BYTES =
  BASE_LIMITS.maxDiskBytes + BASE_LIMITS.maxMemorySnapshotBytes + 2 * BASE_LIMITS.maxBootFileBytes;

/**
 * Import = download (URL) → check the zip and base.json → decompress into a staging folder → the
 * same finishBase() as register, told what base.json expects, so every hash and the id are
 * recomputed from the bytes and compared before anything is committed. All work happens in
 * owned folders under tmp/, removed whatever happens (or by the next open() after a crash).
 */
export async function importBaseFrom(
  ctx: RegistryContext,
  source: string,
  options: ImportOptions,
): Promise<{ id: string; alreadyPresent: boolean }> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const work: string[] = [];
  const ownedDir = async (kind: 'import' | 'stage') => {
    const dir = join(ctx.layout.tmp, tempName(kind));
    work.push(dir);
    await mkdir(dir);
    return dir;
  };
  try {
    let zipPath = localPath(source);
    if (zipPath === undefined) {
      zipPath = join(await ownedDir('import'), 'package.zip');
      await downloadTo(source, zipPath, {
        fetch: ctx.fetch,
        maxBytes,
        onProgress: options.onProgress,
        signal: options.signal,
      });
    }
    const pkg = await openPackage(zipPath, { maxBytes });
    try {
      const { manifest } = pkg;
      // Already here: the local copy was verified when it was registered; nothing to unpack.
      if (rowById(ctx.db, manifest.id)) return { id: manifest.id, alreadyPresent: true };
      const staged = await ownedDir('stage');
      const diskIndex = await unpack(pkg, manifest, staged, options);
      const { alreadyPresent } = await finishBase(
        ctx,
        staged,
        {
          spec: manifest.spec,
          qemuVersion: manifest.hostFacts.qemuVersion,
          cpuModel: manifest.hostFacts.cpuModel,
          backend: manifest.hostFacts.backend,
          label: manifest.label,
          createdAt: manifest.createdAt,
          expected: manifest,
          diskIndex,
        },
        { onProgress: options.onProgress, signal: options.signal },
      );
      return { id: manifest.id, alreadyPresent };
    } finally {
      pkg.close();
    }
  } finally {
    await Promise.all(work.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

/** A local file path (plain or file: URL), or undefined for http(s); other schemes are refused. */
function localPath(source: string): string | undefined {
  if (/^https?:\/\//i.test(source)) return undefined;
  if (/^file:/i.test(source)) return fileURLToPath(source);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source))
    throw new RegistryError('download-failed', `cannot import from ${source}: only files and http(s) URLs`);
  return source;
}

/**
 * Decompresses every bulk member into the staging folder. The disk's chunk index is built from the
 * very chunks handed to the file as they pass (zero chunks are not hashed), instead of reading the
 * written disk back: on a sparse disk that re-read is most of the import time.
 */
async function unpack(
  pkg: OpenPackage,
  manifest: BaseManifest,
  dir: string,
  options: ImportOptions,
): Promise<ChunkIndex> {
  const files = bulkFilesOf(manifest);
  const totalBytes = files.reduce((sum, f) => sum + f.bytes, 0);
  let bytesDone = 0;
  const onBytes = (n: number) => {
    bytesDone += n;
    options.onProgress?.({ stage: 'decompress', bytesDone, totalBytes });
  };
  const diskIndex = createChunkIndexBuilder('disk', Math.ceil(manifest.disk.bytes / CHUNK_SIZE));
  const onDiskChunk = (i: number, chunk: Uint8Array | null) =>
    chunk ? diskIndex.set(i, chunk) : diskIndex.setZero(i);
  for (const { file, bytes } of files) {
    options.signal?.throwIfAborted();
    await unpackMember(
      pkg,
      file,
      bytes,
      join(dir, BASE_FILES[file]),
      onBytes,
      file === 'disk' ? onDiskChunk : undefined,
    );
  }
  return createChunkIndex('disk', diskIndex.finish().hashes, manifest.disk.bytes);
}

async function unpackMember(
  pkg: OpenPackage,
  file: BulkFile,
  declared: number,
  target: string,
  onBytes: (bytes: number) => void,
  onChunk: ((index: number, chunk: Uint8Array | null) => void) | undefined,
): Promise<void> {
  const member = BULK_MEMBERS[file];
  const handle = await open(target, 'wx');
  try {
    const sink = sparseFileSink(handle, {
      maxBytes: declared,
      onTooLarge: () =>
        new RegistryError(
          'hash-mismatch',
          `${member} decompresses to more than the ${declared} bytes base.json declares`,
        ),
      onBytes,
      onChunk,
    });
    try {
      for await (const bytes of decompressZstd(await pkg.openMember(file))) await sink.write(bytes);
      await sink.finish();
    } catch (e) {
      if (e instanceof RegistryError) throw e;
      throw new RegistryError('bad-package', `${member} is damaged (${(e as Error).message})`, { cause: e });
    }
    if (sink.bytesWritten !== declared)
      throw new RegistryError(
        'hash-mismatch',
        `${member} decompresses to ${sink.bytesWritten} bytes, base.json declares ${declared}`,
      );
  } finally {
    await handle.close();
  }
}
