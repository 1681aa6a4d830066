import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CHUNK_SIZE, HASH_SIZE } from './chunk.js';
import { type ChunkIndex, createChunkIndex } from './chunk-index.js';
import { DISK_HASH_WORKER_SOURCE } from './disk-hash-worker.js';

export interface IndexProgress {
  readonly bytesDone: number;
  readonly totalBytes: number;
}

export interface IndexDiskImageOptions {
  /** Hashing threads; default: one per core. */
  workers?: number;
  /** Bytes per positional read, a multiple of CHUNK_SIZE; default 8 MiB (large reads, few messages). */
  blockBytes?: number;
  /** Called after each block, in completion order (not file order). */
  onProgress?: (progress: IndexProgress) => void;
  /** Aborting terminates the workers and rejects with the signal's reason. */
  signal?: AbortSignal;
}

const DEFAULT_BLOCK_BYTES = 8 * 1024 * 1024;

/**
 * Chunk index of a raw disk image: sha256 of every 4 KiB chunk, chunk i = bytes [4096 i, 4096 i + 4096).
 * If the size is not a multiple of 4096 the last chunk is hashed zero-padded, and `byteLength`
 * keeps the real size. The size is taken once at the start; the image must not change meanwhile.
 */
export async function indexDiskImage(path: string, options: IndexDiskImageOptions = {}): Promise<ChunkIndex> {
  const blockBytes = options.blockBytes ?? DEFAULT_BLOCK_BYTES;
  if (!Number.isInteger(blockBytes) || blockBytes <= 0 || blockBytes % CHUNK_SIZE !== 0) {
    throw new RangeError(`blockBytes ${blockBytes} is not a positive multiple of ${CHUNK_SIZE}`);
  }
  const wanted = options.workers ?? availableParallelism();
  if (!Number.isInteger(wanted) || wanted < 1) throw new RangeError(`workers ${wanted}`);
  options.signal?.throwIfAborted();

  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const count = Math.ceil(size / CHUNK_SIZE);
    const hashes = new Uint8Array(new SharedArrayBuffer(count * HASH_SIZE));
    const workers = Math.min(wanted, Math.ceil(size / blockBytes));
    if (workers > 0) {
      await runWorkers(
        workers,
        {
          fd: handle.fd,
          size,
          blockBytes,
          chunkSize: CHUNK_SIZE,
          hashSize: HASH_SIZE,
          hashes: hashes.buffer,
          next: new SharedArrayBuffer(4),
        },
        options,
      );
    }
    return createChunkIndex('disk', hashes, size);
  } finally {
    await handle.close();
  }
}

function runWorkers(
  workers: number,
  workerData: Record<string, unknown>,
  { onProgress, signal }: IndexDiskImageOptions,
): Promise<void> {
  const totalBytes = workerData.size as number;
  return new Promise((resolve, reject) => {
    const pool: Worker[] = [];
    let bytesDone = 0;
    let running = workers;
    let failed = false;
    const fail = (reason: unknown) => {
      if (failed) return;
      failed = true;
      signal?.removeEventListener('abort', onAbort);
      // Reject only once no worker can still be reading the descriptor the caller then closes.
      void Promise.allSettled(pool.map((w) => w.terminate())).then(() => reject(reason));
    };
    const onAbort = () => fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(DISK_HASH_WORKER_SOURCE, { eval: true, workerData });
      pool.push(worker);
      worker.on('message', (bytes: number) => {
        bytesDone += bytes;
        if (!failed) onProgress?.({ bytesDone, totalBytes });
      });
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (failed) return;
        if (code !== 0) return fail(new Error(`disk hash worker exited with code ${code}`));
        if (--running === 0) {
          signal?.removeEventListener('abort', onAbort);
          if (bytesDone !== totalBytes) fail(new Error(`indexed ${bytesDone} of ${totalBytes} bytes`));
          else resolve();
        }
      });
    }
  });
}
