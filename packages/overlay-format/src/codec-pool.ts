import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { isBuiltinCodec } from './codecs/builtin-codecs.js';
import type { SegmentCodec } from './codecs/segment-codec.js';
import { COMPRESS_WORKER_SOURCE } from './compress-worker-source.js';

/** Compresses buffers with a codec, on worker threads when the codec is one of ours. */
export interface CompressPool {
  compress(data: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

type Pending = { resolve: (data: Uint8Array) => void; reject: (error: Error) => void };

/**
 * `workers` threads (0: on this thread). Codecs not made by this package (test fakes) always run on
 * this thread: a worker can only run code it can load by name. `data` is transferred: the caller
 * must not touch it afterwards.
 */
export function createCompressPool(codec: SegmentCodec, level: number, workers: number): CompressPool {
  if (workers === 0 || !isBuiltinCodec(codec)) {
    return { compress: (data) => codec.compress(data, level), close: async () => {} };
  }
  const require = createRequire(import.meta.url);
  const workerData = { zstdPath: require.resolve('zstd-napi'), lzmaPath: require.resolve('lzma-native') };
  const pending = new Map<number, Pending>();
  const load = new Map<Worker, number>();
  let nextId = 0;
  let broken: Error | undefined;
  const failAll = (error: Error) => {
    broken ??= error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  for (let i = 0; i < workers; i++) {
    // An eval'd worker inherits --input-type=module (e.g. `node --input-type=module -e`), which would
    // parse the CommonJS source as ESM; drop it.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(COMPRESS_WORKER_SOURCE, { eval: true, workerData, execArgv });
    load.set(worker, 0);
    worker.on('message', (m: { id: number; data?: Uint8Array; error?: string }) => {
      const left = (load.get(worker) ?? 1) - 1;
      load.set(worker, left);
      // Idle workers must not keep the process alive (a writer nobody finished); busy ones must.
      if (left === 0) worker.unref();
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.data !== undefined) p?.resolve(m.data);
      else p?.reject(new Error(`${codec.name} compression failed: ${m.error}`));
    });
    worker.on('error', failAll);
    worker.on('exit', (code) => {
      if (code !== 0) failAll(new Error(`compression worker exited with code ${code}`));
    });
    worker.unref();
  }
  return {
    compress(data) {
      if (broken !== undefined) return Promise.reject(broken);
      // Least-loaded worker: segments differ in cost (zero pages vs random data).
      const [worker] = [...load.entries()].reduce((a, b) => (b[1] < a[1] ? b : a));
      const id = nextId++;
      load.set(worker, (load.get(worker) ?? 0) + 1);
      worker.ref();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, codec: codec.name, level, data }, [data.buffer as ArrayBuffer]);
      });
    },
    async close() {
      failAll(new Error('the compression pool is closed'));
      await Promise.all([...load.keys()].map((w) => w.terminate()));
    },
  };
}
