import { hash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChunkIndex, indexDiskImage } from '@cloudlet/delta';
import type { StreamPrologue } from '@cloudlet/memory-snapshot';
import type { BaseContentDigests } from './base-id.js';
import { RegistryError } from './errors.js';
import { errnoCode, sha256OfFile } from './fs-util.js';
import { BASE_FILES } from './layout.js';
import { BASE_LIMITS } from './limits.js';
import { scanMemorySnapshot } from './memory-scan.js';
import type { ProgressListener } from './progress.js';

/** Everything register learns by reading a staged base's files. */
export interface BaseAnalysis {
  digests: BaseContentDigests;
  diskIndex: ChunkIndex;
  memoryIndex: ChunkIndex;
  prologue: StreamPrologue;
}

export interface AnalyzeOptions {
  /** The disk's index, already built from the exact bytes written to disk.raw (import does this). */
  diskIndex?: ChunkIndex | undefined;
  withKernel: boolean;
  withInitrd: boolean;
  diskIndexWorkers?: number | undefined;
  onProgress?: ProgressListener | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Reads a staged base folder once: disk chunk index (worker threads) and the memory pass run at the
 * same time, boot files are hashed. The disk must already have passed checkRawDisk.
 */
export async function analyzeBase(dir: string, options: AnalyzeOptions): Promise<BaseAnalysis> {
  const { onProgress } = options;
  // One failure stops the other readers before we return (the caller then deletes the folder).
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const tasks = [
    options.diskIndex ??
      indexDiskImage(join(dir, BASE_FILES.disk), {
        ...(options.diskIndexWorkers !== undefined ? { workers: options.diskIndexWorkers } : {}),
        signal,
        onProgress: (p) => onProgress?.({ stage: 'index-disk', ...p }),
      }),
    scanMemorySnapshot(join(dir, BASE_FILES.memory), { onProgress, signal }),
    options.withKernel ? hashBootFile(dir, 'kernel') : undefined,
    options.withInitrd ? hashBootFile(dir, 'initrd') : undefined,
  ] as const;
  for (const task of tasks) void Promise.resolve(task).catch((e: unknown) => stop.abort(e));
  const settled = await Promise.allSettled(tasks);
  options.signal?.throwIfAborted();
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw stop.signal.aborted ? stop.signal.reason : failed.reason;
  const [diskIndex, memory, kernel, initrd] = await Promise.all(tasks);
  return {
    digests: {
      diskBytes: diskIndex.byteLength,
      diskIndexSha256: hash('sha256', diskIndex.hashes, 'hex'),
      memoryBytes: memory.bytes,
      memorySha256: memory.sha256,
      kernel,
      initrd,
    },
    diskIndex,
    memoryIndex: memory.index,
    prologue: memory.prologue,
  };
}

async function hashBootFile(dir: string, which: 'kernel' | 'initrd') {
  const path = join(dir, BASE_FILES[which]);
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new RegistryError('bad-boot-file', `${which} is not a regular file`);
    if (s.size > BASE_LIMITS.maxBootFileBytes)
      throw new RegistryError('bad-boot-file', `${which} is ${s.size} bytes, above the limit`);
    return await sha256OfFile(path);
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    const why = errnoCode(e) === 'ENOENT' ? 'missing' : (e as Error).message;
    throw new RegistryError('bad-boot-file', `${which}: ${why}`, { cause: e });
  }
}
