import { CHUNK_SIZE, type ChunkedImage, chunkCount } from './chunked-image.js';
import type { PrivateStore } from './private-store.js';

export interface ImageFileStats {
  bytesRead: number;
  bytesWritten: number;
  /** Distinct chunks read from the image's source (not the VM's own writes). */
  chunksFetched: number;
}

/** One file of the mount: reads and writes at any offset, turned into whole-chunk operations. */
export interface ImageFile {
  readonly size: number;
  read(position: number, length: number): Promise<Buffer>;
  write(position: number, data: Uint8Array): Promise<number>;
  stats(): ImageFileStats;
}

export class ImageRangeError extends Error {
  override readonly name = 'ImageRangeError';
}

/**
 * `onFirstTouch(chunk)` is called the first time the VM reads or writes a chunk (the access order that
 * profiling records).
 */
export function createImageFile(
  image: ChunkedImage,
  store: PrivateStore,
  onFirstTouch: (chunk: number) => void = () => {},
): ImageFile {
  const { size } = image;
  const touched = new Uint8Array(chunkCount(size));
  const fetching = new Map<number, Promise<Uint8Array>>();
  const writing = new Map<number, Promise<void>>();
  const stats: ImageFileStats = { bytesRead: 0, bytesWritten: 0, chunksFetched: 0 };

  const touch = (index: number) => {
    if (touched[index] === 1) return;
    touched[index] = 1;
    onFirstTouch(index);
  };

  /** Concurrent readers of one chunk share one call to the source. */
  const fromSource = (index: number): Promise<Uint8Array> => {
    let pending = fetching.get(index);
    if (pending === undefined) {
      stats.chunksFetched++;
      pending = image.readChunk(index).finally(() => fetching.delete(index));
      fetching.set(index, pending);
    }
    return pending;
  };

  const current = async (index: number): Promise<Uint8Array> =>
    store.has(index) ? store.get(index) : fromSource(index);

  /** Writes to one chunk run one after another: a partial write reads the chunk, changes it, stores it. */
  const serialized = (index: number, work: () => Promise<void>): Promise<void> => {
    const previous = writing.get(index) ?? Promise.resolve();
    const next = previous.then(work, work);
    writing.set(index, next);
    return next.finally(() => {
      if (writing.get(index) === next) writing.delete(index);
    });
  };

  return {
    size,
    async read(position, length) {
      if (position >= size || length <= 0) return Buffer.alloc(0);
      const end = Math.min(size, position + length);
      const out = Buffer.alloc(end - position);
      const first = Math.floor(position / CHUNK_SIZE);
      const last = Math.floor((end - 1) / CHUNK_SIZE);
      const chunks = [];
      for (let i = first; i <= last; i++) {
        touch(i);
        chunks.push(current(i));
      }
      const data = await Promise.all(chunks);
      data.forEach((chunk, k) => {
        const chunkStart = (first + k) * CHUNK_SIZE;
        const from = Math.max(position, chunkStart);
        const to = Math.min(end, chunkStart + CHUNK_SIZE);
        out.set(chunk.subarray(from - chunkStart, to - chunkStart), from - position);
      });
      stats.bytesRead += out.length;
      return out;
    },
    async write(position, data) {
      const end = position + data.length;
      if (end > size)
        throw new ImageRangeError(`write ${position}+${data.length} beyond the ${size}-byte image`);
      const first = Math.floor(position / CHUNK_SIZE);
      const last = Math.floor((end - 1) / CHUNK_SIZE);
      const writes = [];
      for (let i = first; i <= last; i++) {
        touch(i);
        const chunkStart = i * CHUNK_SIZE;
        const chunkLength = Math.min(CHUNK_SIZE, size - chunkStart);
        const from = Math.max(position, chunkStart);
        const to = Math.min(end, chunkStart + chunkLength);
        const part = data.subarray(from - position, to - position);
        writes.push(
          serialized(i, async () => {
            const whole = from === chunkStart && to === chunkStart + chunkLength;
            const chunk = whole ? Buffer.from(part) : Buffer.from(await current(i));
            if (!whole) chunk.set(part, from - chunkStart);
            store.put(i, chunk);
          }),
        );
      }
      await Promise.all(writes);
      stats.bytesWritten += data.length;
      return data.length;
    },
    stats: () => ({ ...stats }),
  };
}
