import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type ChunkIndex, createChunkIndexBuilder } from '@cloudlet/delta';
import {
  MigrationStreamError,
  type PageIndexer,
  pageIndexer,
  readMigrationStream,
  type StreamPrologue,
} from '@cloudlet/memory-snapshot';
import { RegistryError } from './errors.js';
import { BASE_LIMITS } from './limits.js';
import type { ProgressListener } from './progress.js';

export interface MemoryScan {
  bytes: number;
  sha256: string;
  prologue: StreamPrologue;
  index: ChunkIndex;
}

const IGNORE_SHARED = 'x-ignore-shared';

/**
 * One pass over memory.snap: sha256 of the file and the memory page index (flat page index over the
 * stream's block table; zero pages get the zero hash). Pages the stream never sends are zero: QEMU's
 * destination RAM starts zeroed, so that is what a restore from this file holds there.
 */
export async function scanMemorySnapshot(
  path: string,
  options: { onProgress?: ProgressListener | undefined; signal?: AbortSignal | undefined } = {},
): Promise<MemoryScan> {
  const fail = (detail: string, cause?: unknown) =>
    new RegistryError('bad-memory', `memory.snap: ${detail}`, cause === undefined ? undefined : { cause });
  let totalBytes: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw fail('not a regular file');
    totalBytes = s.size;
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    throw fail(`cannot open (${(e as Error).message})`, e);
  }
  if (totalBytes > BASE_LIMITS.maxMemorySnapshotBytes)
    throw fail(`${totalBytes} bytes, above the ${BASE_LIMITS.maxMemorySnapshotBytes}-byte limit`);

  const digest = createHash('sha256');
  let bytesDone = 0;
  const file = createReadStream(path, {
    highWaterMark: 1 << 20,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of file as AsyncIterable<Buffer>) {
      digest.update(chunk);
      bytesDone += chunk.length;
      options.onProgress?.({ stage: 'index-memory', bytesDone, totalBytes });
      yield chunk;
    }
  }

  let prologue: StreamPrologue | undefined;
  let pages: PageIndexer | undefined;
  let builder: ReturnType<typeof createChunkIndexBuilder> | undefined;
  try {
    for await (const item of readMigrationStream(hashed(), { maxBlockBytes: BASE_LIMITS.maxRamBytes })) {
      if (item.kind === 'page' && pages && builder) {
        const i = pages.indexOf(item.page.block, item.page.offset);
        if (item.page.data === null) builder.setZero(i);
        else builder.set(i, item.page.data);
      } else if (item.kind === 'prologue') {
        prologue = item.prologue;
        if (prologue.capabilities.includes(IGNORE_SHARED))
          throw fail('taken with x-ignore-shared, so its RAM is in a separate file a base does not hold');
        const ram = prologue.blocks.reduce((sum, b) => sum + b.length, 0);
        if (ram > BASE_LIMITS.maxRamBytes)
          throw fail(`${ram} bytes of RAM, above the ${BASE_LIMITS.maxRamBytes}-byte limit`);
        pages = pageIndexer(prologue.blocks);
        builder = createChunkIndexBuilder('memory', pages.pageCount);
      }
    }
  } catch (e) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (e instanceof RegistryError) throw e;
    if (e instanceof MigrationStreamError) throw fail(e.message, e);
    throw fail((e as Error).message, e);
  } finally {
    file.destroy();
  }
  if (prologue === undefined || builder === undefined) throw fail('no migration stream prologue');
  // The reader finds the device tail from the end of the stream, so it has read every byte.
  if (bytesDone !== totalBytes) throw fail(`read ${bytesDone} of ${totalBytes} bytes (file changed?)`);
  return {
    bytes: totalBytes,
    sha256: digest.digest('hex'),
    prologue,
    index: builder.finish({ unsetAreZero: true }),
  };
}
