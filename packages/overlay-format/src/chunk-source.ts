import { open } from 'node:fs/promises';

/** Random access to an overlay's bytes: a local file, an HTTP server with Range, an upload. */
export interface ChunkSource {
  size(): Promise<number>;
  /** Exactly `length` bytes at `offset` (rejects if the source is shorter). */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

export async function fileChunkSource(path: string): Promise<ChunkSource> {
  const handle = await open(path, 'r');
  return {
    size: async () => (await handle.stat()).size,
    async read(offset, length) {
      const out = Buffer.allocUnsafe(length);
      for (let got = 0; got < length; ) {
        const { bytesRead } = await handle.read(out, got, length - got, offset + got);
        if (bytesRead === 0)
          throw new Error(`${path} ends at byte ${offset + got}, wanted ${offset + length}`);
        got += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

/** Bytes already in memory (tests, small uploads). */
export function bufferChunkSource(bytes: Uint8Array): ChunkSource {
  return {
    size: async () => bytes.length,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.length)
        throw new RangeError(
          `read of ${length} bytes at ${offset} is outside the ${bytes.length}-byte source`,
        );
      return bytes.subarray(offset, offset + length);
    },
  };
}
