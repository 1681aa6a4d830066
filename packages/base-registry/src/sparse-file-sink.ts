import type { FileHandle } from 'node:fs/promises';
import { isZeroChunk } from '@cloudlet/delta';

const CHUNK = 4096;
const BATCH = 1 << 20;

export interface SparseFileSinkOptions {
  /** One byte more throws `onTooLarge()`: a decompressed member is cut at its declared size. */
  maxBytes: number;
  onTooLarge: () => Error;
  /** Progress: bytes accepted by this write. */
  onBytes?: ((bytes: number) => void) | undefined;
  /**
   * Sees every 4 KiB chunk in file order, exactly as it goes to the file (null = zero chunk, left
   * as a hole; a short last chunk is passed zero-padded). Lets the caller hash what it writes.
   */
  onChunk?: ((index: number, chunk: Uint8Array | null) => void) | undefined;
}

export interface SparseFileSink {
  /** Copies `bytes` in (the caller may reuse its buffer once this resolves). */
  write(bytes: Uint8Array): Promise<void>;
  /** Writes what is pending and sets the file length. */
  finish(): Promise<void>;
  readonly bytesWritten: number;
}

/**
 * Writes a new file sequentially, leaving all-zero 4 KiB chunks as holes (the length is set at the
 * end), so a mostly-empty disk imports into mostly-empty space.
 */
export function sparseFileSink(handle: FileHandle, options: SparseFileSinkOptions): SparseFileSink {
  const pending = Buffer.allocUnsafe(BATCH);
  let pendingBytes = 0;
  let position = 0; // file offset of pending[0]
  let total = 0;

  async function flush(): Promise<void> {
    let runStart = -1;
    const writes: Promise<void>[] = [];
    for (let at = 0; ; at += CHUNK) {
      const done = at >= pendingBytes;
      const chunk = pending.subarray(at, Math.min(at + CHUNK, pendingBytes));
      const zero = done || isZeroChunk(chunk);
      if (!done) options.onChunk?.((position + at) / CHUNK, zero ? null : padded(chunk));
      if (!zero && runStart < 0) runStart = at;
      if (zero && runStart >= 0) {
        writes.push(
          writeAll(handle, pending.subarray(runStart, Math.min(at, pendingBytes)), position + runStart),
        );
        runStart = -1;
      }
      if (done) break;
    }
    await Promise.all(writes);
    position += pendingBytes;
    pendingBytes = 0;
  }

  return {
    async write(bytes) {
      total += bytes.length;
      if (total > options.maxBytes) throw options.onTooLarge();
      options.onBytes?.(bytes.length);
      for (let offset = 0; offset < bytes.length; ) {
        const n = Math.min(bytes.length - offset, BATCH - pendingBytes);
        pending.set(bytes.subarray(offset, offset + n), pendingBytes);
        pendingBytes += n;
        offset += n;
        if (pendingBytes === BATCH) await flush();
      }
    },
    async finish() {
      await flush();
      await handle.truncate(position);
    },
    get bytesWritten() {
      return total;
    },
  };
}

function padded(chunk: Buffer): Uint8Array {
  if (chunk.length === CHUNK) return chunk;
  const full = new Uint8Array(CHUNK);
  full.set(chunk);
  return full;
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
