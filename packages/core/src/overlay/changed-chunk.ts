/** A chunk that differs from the base chunk at the same address. `data` null means all zero. */
export interface ChangedChunk {
  readonly index: number;
  readonly data: Uint8Array | null;
  readonly hash: Uint8Array;
}
