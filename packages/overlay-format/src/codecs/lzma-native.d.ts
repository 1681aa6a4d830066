// lzma-native ships no types; only what this package uses.
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';
  export function compress(data: Buffer, options: { preset: number }): Promise<Buffer>;
  export function createDecompressor(options?: { memlimit?: number }): Transform;
}
