import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, readFile, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZipFile } from 'yazl';
import { CompressStream } from 'zstd-napi';
import type { BaseInfo } from './base-info.js';
import { RegistryError } from './errors.js';
import { fsyncFile } from './fs-util.js';
import { BASE_FILES } from './layout.js';
import { BULK_MEMBERS, bulkFilesOf, MANIFEST_MEMBER } from './package-format.js';
import type { ProgressListener } from './progress.js';

export interface ExportOptions {
  onProgress?: ProgressListener;
  /** Replace an existing file; default false (an existing target is an 'exists' error). */
  overwrite?: boolean;
  /** zstd level; default 3 (random data does not shrink at any level, zeros vanish at all of them). */
  compressionLevel?: number;
}

export interface ExportResult {
  file: string;
  bytes: number;
}

/**
 * Writes the package to a temp file beside `zipFile` (same filesystem, so the final rename is
 * atomic), fsyncs it and renames it into place: a failure or crash never leaves a partial package
 * under the target name.
 */
export async function exportBaseTo(
  base: BaseInfo,
  zipFile: string,
  options: ExportOptions,
): Promise<ExportResult> {
  if (!options.overwrite && (await exists(zipFile)))
    throw new RegistryError('exists', `${zipFile} exists (pass overwrite to replace it)`);
  const temp = join(dirname(zipFile), `.${basename(zipFile)}.${randomBytes(6).toString('hex')}.partial`);
  try {
    await writePackage(base, createWriteStream(temp, { flags: 'wx' }), options);
    await fsyncFile(temp);
    const { size } = await stat(temp);
    await rename(temp, zipFile);
    return { file: zipFile, bytes: size };
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

async function writePackage(
  base: BaseInfo,
  sink: NodeJS.WritableStream,
  options: ExportOptions,
): Promise<void> {
  const zip = new ZipFile();
  const mtime = new Date(base.createdAt);
  const mode = 0o100644;
  const files = bulkFilesOf(base.manifest);
  const totalBytes = files.reduce((sum, f) => sum + f.bytes, 0);
  let bytesDone = 0;
  // yazl does not watch the streams it is given; their errors end the zip output instead.
  const output = zip.outputStream as Readable;
  const fail = (e: unknown) => output.destroy(e instanceof Error ? e : new Error(String(e)));

  zip.addBuffer(await readFile(base.paths.manifest), MANIFEST_MEMBER, { compress: false, mtime, mode });
  for (const { file } of files) {
    zip.addReadStreamLazy(BULK_MEMBERS[file], { compress: false, mtime, mode }, (done) => {
      const source = createReadStream(join(base.paths.dir, BASE_FILES[file]), { highWaterMark: 1 << 20 });
      const counted = new Transform({
        transform(chunk: Buffer, _enc, next) {
          bytesDone += chunk.length;
          options.onProgress?.({ stage: 'compress', bytesDone, totalBytes });
          next(null, chunk);
        },
      });
      const compressed = new CompressStream({
        compressionLevel: options.compressionLevel ?? 3,
        // zstd's own worker threads (the JS thread only moves buffers and runs yazl's CRC-32); more
        // than a few cannot help while the CRC and the disk write stay single-stream.
        nbWorkers: Math.min(4, availableParallelism()),
        checksumFlag: true,
      });
      // Not stream.pipeline: it would destroy `compressed` once written, before yazl has read it all.
      for (const stream of [source, counted, compressed]) stream.on('error', fail);
      source.pipe(counted).pipe(compressed);
      done(null, compressed as unknown as Readable);
    });
  }
  zip.end();
  await pipeline(output, sink);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
