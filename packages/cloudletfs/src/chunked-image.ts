/** The chunk size of every image cloudletfs serves: overlay chunks and memory pages are 4 KiB. */
export const CHUNK_SIZE = 4096;

/**
 * Where an image's content comes from. `readChunk` may wait (the chunk is still on its way) and may trigger a
 * priority fetch; cloudletfs calls it at most once at a time per chunk and keeps nothing itself but the VM's
 * own writes.
 */
export interface ChunkedImage {
  /** Bytes; the last chunk may be short. */
  readonly size: number;
  /** Chunk `index`'s bytes (CHUNK_SIZE long, or shorter at the end). */
  readChunk(index: number): Promise<Uint8Array>;
}

export const chunkCount = (size: number) => Math.ceil(size / CHUNK_SIZE);
