import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { isZeroChunk } from '@cloudlet/delta';

const CHUNK = 4096;
const BATCH = 1 << 20;

/**
 * A Writable into a new file that leaves all-zero 4 KiB chunks as holes (the file is truncated to
 * its full length at the end), so a mostly-empty disk imports into mostly-empty space. Accepts at
 * most `maxBytes`: one byte more fails the stream with `onTooLarge()` — a decompressed member is
 * cut at its declared size, never trusted to stop there by itself. `onBytes` reports progress.
 */
export function sparseFileWriter(
  handle: FileHandle,
  options: { maxBytes: number; onTooLarge: () => Error; onBytes?: (bytes: number) => void },
): Writable & { readonly bytesWritten: number } {
  const pending = Buffer.allocUnsafe(BATCH);
  let pendingBytes = 0;
  let position = 0; // file offset of pending[0]
  let total = 0;

  async function flush(): Promise<void> {
    let runStart = -1;
    const writes: Promise<unknown>[] = [];
    for (let at = 0; ; at += CHUNK) {
      const done = at >= pendingBytes;
      const zero = done || isZeroChunk(pending.subarray(at, Math.min(at + CHUNK, pendingBytes)));
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

  const writer = new Writable({
    async write(chunk: Buffer, _encoding, done) {
      try {
        total += chunk.length;
        if (total > options.maxBytes) throw options.onTooLarge();
        options.onBytes?.(chunk.length);
        let offset = 0;
        while (offset < chunk.length) {
          const n = chunk.copy(pending, pendingBytes, offset);
          pendingBytes += n;
          offset += n;
          if (pendingBytes === BATCH) await flush();
        }
        done();
      } catch (e) {
        done(e as Error);
      }
    },
    async final(done) {
      try {
        await flush();
        await handle.truncate(position);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
  return Object.defineProperty(writer, 'bytesWritten', { get: () => total }) as Writable & {
    readonly bytesWritten: number;
  };
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
