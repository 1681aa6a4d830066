// lzma-native ships no types; only what this package uses.
declare module 'lzma-native' {
  import type { Transform } from 'node:stream';
  export interface Filter {
    id: string;
    options?: { preset?: number };
  }
  export const FILTER_X86: string;
  export const FILTER_LZMA2: string;
  export const CHECK_CRC32: number;
  export function createStream(
    coder: 'streamEncoder',
    options: { filters: Filter[]; check: number },
  ): Transform;
  export function createDecompressor(options?: { memlimit?: number }): Transform;
}
