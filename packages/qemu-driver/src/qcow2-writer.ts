// Writes a qcow2 copy-on-write image over a base disk without QEMU: only the clusters handed to `write`
// are stored, the rest reads through to the backing file. Data clusters go to disk as they arrive (in any
// order); the L2 tables and refcounts live in memory and are written after the data at close, with the
// header last, so a writer that dies early leaves a file QEMU will not mistake for a valid image.
import {
  fileError,
  nodeQcow2Deps,
  type Qcow2File,
  type Qcow2WriterDeps,
  Qcow2WriterError,
  readFully,
  writeFully,
} from './qcow2/file-io.js';
import { encodeHeaderCluster, headerBytes, MAX_BACKING_NAME_BYTES } from './qcow2/header.js';
import {
  COPIED,
  encodeL1,
  encodeRefcountBlocks,
  encodeRefcountTable,
  layoutMetadata,
  REFCOUNT_ORDER,
} from './qcow2/metadata.js';

export {
  type Qcow2File,
  type Qcow2WriterDeps,
  Qcow2WriterError,
  type Qcow2WriterErrorCode,
} from './qcow2/file-io.js';

export interface Qcow2WriterOptions {
  /** The image to create (an existing file is replaced). */
  file: string;
  /** Stored as given; QEMU resolves a relative name against the image's folder. */
  backingFile: string;
  backingFormat: 'raw' | 'qcow2';
  /** Guest-visible size in bytes, a multiple of 512. */
  virtualSize: number;
  /** 4 KiB by default: overlay chunks are 4 KiB pages, so larger clusters would drag in unchanged bytes. */
  clusterSize?: 4096 | 65536;
}

export interface Qcow2Writer {
  /**
   * Stores guest bytes at `offset`. `offset` and the length are multiples of the cluster size (the length
   * may instead end exactly at a virtualSize that is not); each cluster may be written once. A failed file
   * write rejects with Qcow2WriterError `disk-full` (ENOSPC) or `io`; the writer is then broken.
   */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Reads back guest bytes this writer stored (same alignment rules as `write`), waiting for a write still
   * in flight; `undefined` when any cluster of the range was never written (it lives in the backing file).
   */
  read(offset: number, length: number): Promise<Uint8Array | undefined>;
  /** Guest bytes whose write has completed (for progress). */
  readonly bytesWritten: number;
  /** Clusters whose write has completed. */
  readonly clustersWritten: number;
  /**
   * Waits for pending writes, writes the metadata and the header, fsyncs and closes the file. After a failed
   * write it closes and removes the partial file (it has no valid header) and rejects with that error.
   */
  close(): Promise<{ clusters: number; fileBytes: number }>;
}

function checkOptions(options: Qcow2WriterOptions, clusterSize: number): void {
  const fail = (message: string) => {
    throw new Qcow2WriterError('invalid-options', message);
  };
  if (
    !Number.isSafeInteger(options.virtualSize) ||
    options.virtualSize <= 0 ||
    options.virtualSize % 512 !== 0
  )
    fail(`virtualSize must be a positive multiple of 512, got ${options.virtualSize}`);
  if (clusterSize !== 4096 && clusterSize !== 65536)
    fail(`clusterSize must be 4096 or 65536, got ${clusterSize}`);
  const nameBytes = Buffer.byteLength(options.backingFile);
  if (nameBytes === 0 || nameBytes > MAX_BACKING_NAME_BYTES)
    fail(`backingFile must be 1..${MAX_BACKING_NAME_BYTES} bytes long`);
  if (headerBytes(options.backingFile, options.backingFormat) > clusterSize)
    fail('backingFile does not fit in the header cluster');
}

/** Where each guest cluster is stored: L2 tables by L1 index, filled in as clusters arrive. */
function clusterMap(clusterSize: number) {
  const l2Entries = clusterSize / 8;
  const tables = new Map<number, Buffer>();
  return {
    tables,
    /** The host cluster holding `guestCluster`, or undefined when it was never written. */
    get(guestCluster: number): number | undefined {
      const table = tables.get(Math.floor(guestCluster / l2Entries));
      const entry = table?.readBigUInt64BE((guestCluster % l2Entries) * 8) ?? 0n;
      return entry === 0n ? undefined : Number(entry & ~COPIED) / clusterSize;
    },
    set(guestCluster: number, hostCluster: number): void {
      const l1Index = Math.floor(guestCluster / l2Entries);
      let table = tables.get(l1Index);
      if (table === undefined) {
        table = Buffer.alloc(clusterSize);
        tables.set(l1Index, table);
      }
      table.writeBigUInt64BE(BigInt(hostCluster * clusterSize) | COPIED, (guestCluster % l2Entries) * 8);
    },
  };
}

export async function createQcow2Writer(
  options: Qcow2WriterOptions,
  overrides: Partial<Qcow2WriterDeps> = {},
): Promise<Qcow2Writer> {
  const deps: Qcow2WriterDeps = { ...nodeQcow2Deps, ...overrides };
  const clusterSize = options.clusterSize ?? 4096;
  checkOptions(options, clusterSize);
  const { virtualSize } = options;
  const path = options.file;
  const guestClusters = Math.ceil(virtualSize / clusterSize);
  const l1Entries = Math.ceil(guestClusters / (clusterSize / 8));

  const file: Qcow2File = await deps.open(path).catch((error: unknown) => {
    throw fileError(path, 'creating the image', error);
  });
  const clusters = clusterMap(clusterSize);
  let nextCluster = 1; // cluster 0 is the header
  let dataClusters = 0;
  let bytesWritten = 0;
  let clustersWritten = 0;
  /** Writes in flight, by guest cluster, so a read can wait for the one it needs. */
  const pending = new Map<number, Promise<void>>();
  let writeFailure: Qcow2WriterError | undefined;
  let closing = false;

  function checkRange(op: 'write' | 'read', offset: number, length: number): void {
    if (closing) throw new Qcow2WriterError('closed', `${op} after close`);
    const end = offset + length;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > virtualSize)
      throw new Qcow2WriterError('out-of-range', `${op} ${offset}+${length} is outside 0..${virtualSize}`);
    if (offset % clusterSize !== 0 || length <= 0 || (length % clusterSize !== 0 && end !== virtualSize))
      throw new Qcow2WriterError(
        'misaligned',
        `${op} ${offset}+${length} is not whole ${clusterSize}-byte clusters`,
      );
  }

  async function write(offset: number, data: Uint8Array): Promise<void> {
    checkRange('write', offset, data.length);
    if (writeFailure !== undefined) throw writeFailure;
    const first = offset / clusterSize;
    const count = Math.ceil(data.length / clusterSize);
    for (let i = 0; i < count; i++) {
      if (clusters.get(first + i) !== undefined)
        throw new Qcow2WriterError('rewrite', `cluster at ${(first + i) * clusterSize} was already written`);
    }
    // Allocate synchronously, before any await, so concurrent writes never share clusters.
    const hostCluster = nextCluster;
    nextCluster += count;
    dataClusters += count;
    for (let i = 0; i < count; i++) clusters.set(first + i, hostCluster + i);
    const written = writeFully(file, data, hostCluster * clusterSize);
    for (let i = 0; i < count; i++) pending.set(first + i, written);
    try {
      await written;
      bytesWritten += data.length;
      clustersWritten += count;
    } catch (error) {
      writeFailure ??= fileError(path, `writing ${data.length} bytes at guest offset ${offset}`, error);
      throw writeFailure;
    } finally {
      for (let i = 0; i < count; i++) pending.delete(first + i);
    }
  }

  async function read(offset: number, length: number): Promise<Uint8Array | undefined> {
    checkRange('read', offset, length);
    const first = offset / clusterSize;
    const count = Math.ceil(length / clusterSize);
    const hosts: number[] = [];
    for (let i = 0; i < count; i++) {
      const host = clusters.get(first + i);
      if (host === undefined) return undefined;
      hosts.push(host);
    }
    const inFlight = hosts.map((_, i) => pending.get(first + i)).filter((p) => p !== undefined);
    await Promise.allSettled(inFlight);
    if (writeFailure !== undefined) throw writeFailure;
    const out = new Uint8Array(length);
    // One positional read per run of host-contiguous clusters (a multi-cluster write is one such run).
    for (let i = 0; i < count; ) {
      let run = 1;
      while (i + run < count && hosts[i + run] === (hosts[i] ?? 0) + run) run++;
      const from = i * clusterSize;
      const to = Math.min(length, (i + run) * clusterSize);
      await readFully(file, out.subarray(from, to), (hosts[i] ?? 0) * clusterSize).catch((error: unknown) => {
        throw fileError(path, `reading guest offset ${offset + from}`, error);
      });
      i += run;
    }
    return out;
  }

  async function writeMetadata(): Promise<number> {
    const l1Indexes = [...clusters.tables.keys()].sort((a, b) => a - b);
    const layout = layoutMetadata(clusterSize, nextCluster, l1Indexes.length, l1Entries);
    for (const [i, l1Index] of l1Indexes.entries()) {
      const table = clusters.tables.get(l1Index) as Buffer;
      await writeFully(file, table, (layout.l2Clusters[i] ?? 0) * clusterSize);
    }
    await writeFully(file, encodeL1(layout, clusterSize, l1Indexes), layout.l1Cluster * clusterSize);
    await writeFully(
      file,
      encodeRefcountTable(layout, clusterSize),
      layout.refcountTableCluster * clusterSize,
    );
    await writeFully(
      file,
      encodeRefcountBlocks(layout, clusterSize),
      layout.refcountBlockCluster * clusterSize,
    );
    // The data must be durable before the header that makes the image valid.
    await file.sync();
    const header = encodeHeaderCluster({
      clusterBits: Math.log2(clusterSize),
      virtualSize,
      l1Entries,
      l1Offset: layout.l1Cluster * clusterSize,
      refcountTableOffset: layout.refcountTableCluster * clusterSize,
      refcountTableClusters: layout.refcountTableClusters,
      refcountOrder: REFCOUNT_ORDER,
      backingFile: options.backingFile,
      backingFormat: options.backingFormat,
    });
    await writeFully(file, header, 0);
    await file.sync();
    return layout.totalClusters * clusterSize;
  }

  async function close(): Promise<{ clusters: number; fileBytes: number }> {
    if (closing) throw new Qcow2WriterError('closed', 'close called twice');
    closing = true;
    try {
      await Promise.allSettled([...new Set(pending.values())]);
      if (writeFailure !== undefined) throw writeFailure;
      const fileBytes = await writeMetadata();
      await file.close();
      return { clusters: dataClusters, fileBytes };
    } catch (error) {
      await file.close().catch(() => {}); // a second error here would hide the first
      // Without its header the partial file is no image at all; do not leave it filling the disk.
      await deps.remove(path);
      throw fileError(path, 'writing the qcow2 metadata', error);
    }
  }

  return {
    write,
    read,
    close,
    get bytesWritten() {
      return bytesWritten;
    },
    get clustersWritten() {
      return clustersWritten;
    },
  };
}
