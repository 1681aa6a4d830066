import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { CODEC_WORKER_SOURCE } from './codec-worker-source.js';
import { isBuiltinCodec } from './codecs/builtin-codecs.js';
import type { SegmentCodec } from './codecs/segment-codec.js';
import { OverlayFormatError } from './errors.js';

/** Runs a codec on worker threads when the codec is one of ours. */
export interface CodecPool {
  /** `data` is transferred: the caller must not touch it afterwards. */
  compress(data: Uint8Array): Promise<Uint8Array>;
  /**
   * Checks `sha256` of `data` (when given; 'hash-mismatch' names `what`), then decompresses exactly
   * `size` bytes (codec.decompress's contract and errors). `data` is copied, not transferred: it may
   * be a view into the caller's buffer (bufferChunkSource).
   */
  decompress(data: Uint8Array, size: number, check?: { sha256: string; what: string }): Promise<Uint8Array>;
  /** Resolves once every worker is up (tests use it to be sure the worker path runs). */
  readonly booted: Promise<void>;
  close(): Promise<void>;
}

type Pending = {
  resolve: (data: Uint8Array) => void;
  reject: (error: Error) => void;
  op: string;
  what: string;
};
type Reply = {
  ready?: true;
  id: number;
  data?: Uint8Array;
  error?: string;
  code?: 'bad-compressed-data' | 'hash-mismatch';
};

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const hashMismatch = (what: string) =>
  new OverlayFormatError('hash-mismatch', `${what} does not match its sha256 in the manifest`);

/** On this thread: `workers` 0, or a codec a worker cannot load by name (test fakes). */
function localPool(codec: SegmentCodec, level: number): CodecPool {
  return {
    compress: (data) => codec.compress(data, level),
    async decompress(data, size, check) {
      if (check !== undefined && sha256(data) !== check.sha256) throw hashMismatch(check.what);
      return codec.decompress(data, size);
    },
    booted: Promise.resolve(),
    close: async () => {},
  };
}

/** `workers` threads (0: this thread); `level` only matters for compress. */
export function createCodecPool(codec: SegmentCodec, workers: number, level = codec.defaultLevel): CodecPool {
  if (workers === 0 || !isBuiltinCodec(codec)) return localPool(codec, level);
  const require = createRequire(import.meta.url);
  const workerData = {
    codec: codec.name,
    zstdPath: require.resolve('zstd-napi'),
    zstdBindingPath: require.resolve('zstd-napi/binding.js'),
    lzmaPath: require.resolve('lzma-native'),
  };
  const pending = new Map<number, Pending>();
  const load = new Map<Worker, number>();
  /** Booted workers (~30-60 ms each); until one is, decompression runs here instead of waiting. */
  const ready = new Set<Worker>();
  const local = localPool(codec, level);
  let allBooted = () => {};
  const booted = new Promise<void>((resolve) => {
    allBooted = resolve;
  });
  let nextId = 0;
  let broken: Error | undefined;
  const failAll = (error: Error) => {
    broken ??= error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  const settle = (m: Reply) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (p === undefined) return;
    if (m.data !== undefined) p.resolve(m.data);
    else if (m.code === 'hash-mismatch') p.reject(hashMismatch(p.what));
    else if (m.code !== undefined) p.reject(new OverlayFormatError(m.code, m.error ?? ''));
    else p.reject(new Error(`${codec.name} ${p.op} failed: ${m.error}`));
  };
  for (let i = 0; i < workers; i++) {
    // An eval'd worker inherits --input-type=module (e.g. `node --input-type=module -e`), which would
    // parse the CommonJS source as ESM; drop it.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(CODEC_WORKER_SOURCE, { eval: true, workerData, execArgv });
    load.set(worker, 0);
    worker.on('message', (m: Reply) => {
      if (m.ready) {
        ready.add(worker);
        if (ready.size === workers) allBooted();
        return;
      }
      const left = (load.get(worker) ?? 1) - 1;
      load.set(worker, left);
      // Idle workers must not keep the process alive (a writer nobody finished); busy ones must.
      if (left === 0) worker.unref();
      settle(m);
    });
    worker.on('error', failAll);
    worker.on('exit', (code) => {
      if (code !== 0) failAll(new Error(`codec worker exited with code ${code}`));
    });
    worker.unref();
  }
  const post = (message: { op: string; [key: string]: unknown }, transfer: ArrayBuffer[], what: string) => {
    if (broken !== undefined) return Promise.reject(broken);
    // Least-loaded worker: segments differ in cost (zero pages vs random data).
    const candidates = [...load.entries()].filter(([w]) => ready.size === 0 || ready.has(w));
    const [worker] = candidates.reduce((a, b) => (b[1] < a[1] ? b : a));
    const id = nextId++;
    load.set(worker, (load.get(worker) ?? 0) + 1);
    worker.ref();
    return new Promise<Uint8Array>((resolve, reject) => {
      pending.set(id, { resolve, reject, op: message.op, what });
      worker.postMessage({ id, codec: codec.name, ...message }, transfer);
    });
  };
  return {
    booted,
    compress: (data) => post({ op: 'compress', level, data }, [data.buffer as ArrayBuffer], 'data'),
    decompress: (data, size, check) =>
      // A small overlay is read before the threads are up: 64 MiB of chunks (10 MB of zstd) reads in
      // ~75 ms, and booting two workers takes ~60 ms on the 2-core bench VM.
      broken === undefined && ready.size === 0
        ? local.decompress(data, size, check)
        : post(
            { op: 'decompress', size, data, ...(check && { sha256: check.sha256 }) },
            [],
            check?.what ?? 'data',
          ),
    async close() {
      failAll(new OverlayFormatError('invalid-use', 'the codec pool is closed'));
      await Promise.all([...load.keys()].map((w) => w.terminate()));
    },
  };
}
