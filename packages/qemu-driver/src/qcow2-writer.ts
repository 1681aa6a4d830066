// Writes a qcow2 copy-on-write image over a base disk without QEMU: only the clusters handed to `write`
// are stored, the rest reads through to the backing file. Data clusters go to disk as they arrive (in any
// order); the L2 tables and refcounts live in memory and are written after the data at close, with the
// header last, so a writer that dies early leaves a file QEMU will not mistake for a valid image.
import { type FileHandle, open } from 'node:fs/promises';
import { encodeHeaderCluster, headerBytes, MAX_BACKING_NAME_BYTES } from './qcow2/header.js';
import {
  COPIED,
  encodeL1,
  encodeRefcountBlocks,
  encodeRefcountTable,
  layoutMetadata,
  REFCOUNT_ORDER,
} from './qcow2/metadata.js';

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
   * may instead end exactly at a virtualSize that is not); each cluster may be written once.
   */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Waits for pending writes, writes the metadata and the header, fsyncs and closes the file. */
  close(): Promise<{ clusters: number; fileBytes: number }>;
}

export type Qcow2WriterErrorCode = 'invalid-options' | 'misaligned' | 'out-of-range' | 'rewrite' | 'closed';

/** A misuse of the writer; `code` says which. */
export class Qcow2WriterError extends Error {
  override readonly name = 'Qcow2WriterError';
  constructor(
    readonly code: Qcow2WriterErrorCode,
    message: string,
  ) {
    super(message);
  }
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

export async function createQcow2Writer(options: Qcow2WriterOptions): Promise<Qcow2Writer> {
  const clusterSize = options.clusterSize ?? 4096;
  checkOptions(options, clusterSize);
  const { virtualSize } = options;
  const clusterBits = Math.log2(clusterSize);
  const l2Entries = clusterSize / 8;
  const guestClusters = Math.ceil(virtualSize / clusterSize);
  const l1Entries = Math.ceil(guestClusters / l2Entries);

  const file: FileHandle = await open(options.file, 'w');
  /** L2 tables by L1 index, filled in as clusters arrive. */
  const l2Tables = new Map<number, Buffer>();
  let nextCluster = 1; // cluster 0 is the header
  let dataClusters = 0;
  const pending = new Set<Promise<void>>();
  let writeFailure: unknown;
  let closing = false;

  function l2EntryFor(guestCluster: number): { table: Buffer; at: number } {
    const l1Index = Math.floor(guestCluster / l2Entries);
    let table = l2Tables.get(l1Index);
    if (table === undefined) {
      table = Buffer.alloc(clusterSize);
      l2Tables.set(l1Index, table);
    }
    return { table, at: (guestCluster % l2Entries) * 8 };
  }

  function isWritten(guestCluster: number): boolean {
    const table = l2Tables.get(Math.floor(guestCluster / l2Entries));
    return table !== undefined && table.readBigUInt64BE((guestCluster % l2Entries) * 8) !== 0n;
  }

  function checkWrite(offset: number, length: number): void {
    if (closing) throw new Qcow2WriterError('closed', 'write after close');
    const end = offset + length;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > virtualSize)
      throw new Qcow2WriterError('out-of-range', `write ${offset}+${length} is outside 0..${virtualSize}`);
    if (offset % clusterSize !== 0 || length === 0 || (length % clusterSize !== 0 && end !== virtualSize))
      throw new Qcow2WriterError(
        'misaligned',
        `write ${offset}+${length} is not whole ${clusterSize}-byte clusters`,
      );
  }

  async function write(offset: number, data: Uint8Array): Promise<void> {
    checkWrite(offset, data.length);
    const first = offset / clusterSize;
    const count = Math.ceil(data.length / clusterSize);
    for (let i = 0; i < count; i++) {
      if (isWritten(first + i))
        throw new Qcow2WriterError('rewrite', `cluster at ${(first + i) * clusterSize} was already written`);
    }
    const entries = Array.from({ length: count }, (_, i) => l2EntryFor(first + i));
    // Allocate synchronously, before any await, so concurrent writes never share clusters.
    const hostCluster = nextCluster;
    nextCluster += count;
    dataClusters += count;
    entries.forEach(({ table, at }, i) => {
      table.writeBigUInt64BE(BigInt((hostCluster + i) * clusterSize) | COPIED, at);
    });
    const written = writeFully(file, data, hostCluster * clusterSize);
    pending.add(written);
    try {
      await written;
    } catch (error) {
      writeFailure ??= error;
      throw error;
    } finally {
      pending.delete(written);
    }
  }

  async function close(): Promise<{ clusters: number; fileBytes: number }> {
    if (closing) throw new Qcow2WriterError('closed', 'close called twice');
    closing = true;
    try {
      await Promise.allSettled([...pending]);
      if (writeFailure !== undefined) throw writeFailure;
      const l1Indexes = [...l2Tables.keys()].sort((a, b) => a - b);
      const layout = layoutMetadata(clusterSize, nextCluster, l1Indexes.length, l1Entries);
      for (const [i, l1Index] of l1Indexes.entries()) {
        const table = l2Tables.get(l1Index) as Buffer;
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
        clusterBits,
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
      return { clusters: dataClusters, fileBytes: layout.totalClusters * clusterSize };
    } finally {
      await file.close();
    }
  }

  return { write, close };
}

/** Positional writes may be short; loop until every byte is down. */
async function writeFully(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
