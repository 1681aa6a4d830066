import { TWO_POW_32 } from './format.js';

/**
 * Fixed-size output chunk that records are serialised into; `flush` hands the filled part out and
 * starts a fresh chunk (consumers may hold on to yielded chunks, so they are never reused).
 */
export class OutputBuffer {
  private buf: Uint8Array;
  private pos = 0;
  /** Stream offset of buf[0]. */
  private flushedBytes = 0;

  constructor(private readonly chunkBytes: number) {
    this.buf = new Uint8Array(chunkBytes);
  }

  /** Stream offset of the next byte written. */
  get offset(): number {
    return this.flushedBytes + this.pos;
  }

  get free(): number {
    return this.buf.length - this.pos;
  }

  get isEmpty(): boolean {
    return this.pos === 0;
  }

  flush(): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    this.flushedBytes += this.pos;
    this.buf = new Uint8Array(this.chunkBytes);
    this.pos = 0;
    return out;
  }

  /** Accounts for bytes yielded directly (large blobs) instead of being copied in. */
  skipExternal(n: number): void {
    this.flushedBytes += n;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  be32(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }

  /** be64 of a non-negative integer below 2^53, without BigInt. */
  be64(v: number): void {
    this.be32(Math.floor(v / TWO_POW_32));
    this.be32(v % TWO_POW_32);
  }

  be64Big(v: bigint): void {
    this.be32(Number((v >> 32n) & 0xffff_ffffn));
    this.be32(Number(v & 0xffff_ffffn));
  }

  bytes(v: Uint8Array): void {
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  /** u8 length + bytes. */
  shortBytes(v: Uint8Array): void {
    this.u8(v.length);
    this.bytes(v);
  }
}
