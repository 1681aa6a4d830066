import { open } from 'node:fs/promises';
import {
  CHUNK_SIZE,
  type ChunkIndex,
  hashChunk,
  isUnchanged,
  isZeroChunk,
  ZERO_CHUNK_HASH,
} from '@cloudlet/delta';
import { mapDisk } from '@cloudlet/qemu-driver';
import type { ChangedChunk } from './changed-chunk.js';

const READ_CHUNKS = 256; // 1 MiB reads

/**
 * Yields the disk chunks a qcow2 overlay holds itself (depth 0 in `qemu-img map`) that differ from the base
 * chunk at the same index. Only those extents are read, straight from the qcow2 file at their host offsets;
 * clusters the guest trimmed were deallocated (discard=unmap) and never show up here.
 */
export async function* changedDiskChunks(
  qcow2: string,
  base: ChunkIndex,
  onBytes?: (bytesDone: number, totalBytes: number) => void,
): AsyncGenerator<ChangedChunk> {
  const own = (await mapDisk(qcow2)).filter((e) => e.depth === 0 && (e.zero || e.data));
  const totalBytes = own.reduce((n, e) => n + e.length, 0);
  let bytesDone = 0;
  const file = await open(qcow2, 'r');
  try {
    for (const extent of own) {
      if (extent.start % CHUNK_SIZE !== 0 || extent.length % CHUNK_SIZE !== 0) {
        throw new Error(`qcow2 extent ${extent.start}+${extent.length} is not 4 KiB aligned (cluster size?)`);
      }
      const first = extent.start / CHUNK_SIZE;
      const count = extent.length / CHUNK_SIZE;
      if (extent.zero || extent.offset === undefined) {
        for (let i = first; i < first + count; i++) {
          if (!isUnchanged(ZERO_CHUNK_HASH, base, i)) yield { index: i, data: null, hash: ZERO_CHUNK_HASH };
        }
        bytesDone += extent.length;
        continue;
      }
      yield* changedInExtent(file, extent.offset, first, count, base);
      bytesDone += extent.length;
      onBytes?.(bytesDone, totalBytes);
    }
  } finally {
    await file.close();
  }
}

async function* changedInExtent(
  file: Awaited<ReturnType<typeof open>>,
  hostOffset: number,
  first: number,
  count: number,
  base: ChunkIndex,
): AsyncGenerator<ChangedChunk> {
  for (let done = 0; done < count; done += READ_CHUNKS) {
    const n = Math.min(READ_CHUNKS, count - done);
    // A fresh buffer per read: yielded chunks are views into it and may be kept by the consumer.
    const buffer = Buffer.alloc(n * CHUNK_SIZE);
    await file.read(buffer, 0, buffer.length, hostOffset + done * CHUNK_SIZE);
    for (let k = 0; k < n; k++) {
      const data = buffer.subarray(k * CHUNK_SIZE, (k + 1) * CHUNK_SIZE);
      const index = first + done + k;
      const zero = isZeroChunk(data);
      const hash = zero ? ZERO_CHUNK_HASH : hashChunk(data);
      if (!isUnchanged(hash, base, index)) yield { index, data: zero ? null : data, hash };
    }
  }
}
