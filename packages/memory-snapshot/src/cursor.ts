import { MigrationStreamError } from './errors.js';
import { TWO_POW_32 } from './format.js';

/** Thrown by Cursor when the window ends before the value; the caller retries with more bytes. */
export class NeedMoreBytes extends Error {}

/**
 * Synchronous big-endian reader over a window of the stream, used for the small variable-length
 * structures (configuration, block table) whose length is only known by parsing them.
 */
export class Cursor {
  pos = 0;

  constructor(
    readonly bytes: Uint8Array,
    /** Stream offset of bytes[0], for error messages. */
    readonly baseOffset: number,
  ) {}

  get offset(): number {
    return this.baseOffset + this.pos;
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new NeedMoreBytes();
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.pos++] as number;
  }

  peekU8(): number {
    this.need(1);
    return this.bytes[this.pos] as number;
  }

  be32(): number {
    this.need(4);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 4;
    return (
      (((b[p] as number) << 24) |
        ((b[p + 1] as number) << 16) |
        ((b[p + 2] as number) << 8) |
        (b[p + 3] as number)) >>>
      0
    );
  }

  /** be64 as a JS number; exact up to 2^53, callers bound-check the result. */
  be64(): number {
    const hi = this.be32();
    return hi * TWO_POW_32 + this.be32();
  }

  be64Big(): bigint {
    const hi = this.be32();
    return (BigInt(hi) << 32n) | BigInt(this.be32());
  }

  bytesView(n: number): Uint8Array {
    this.need(n);
    const view = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return view;
  }

  /** u8 length + bytes, decoded byte-for-char so names survive a round trip unchanged. */
  shortString(what: string): string {
    const at = this.offset;
    const len = this.u8();
    if (len === 0) throw new MigrationStreamError('absurd-size', at, `empty ${what}`);
    return bytesToName(this.bytesView(len));
  }
}

/** One char per byte (ISO-8859-1), the exact inverse of nameToBytes. */
export function bytesToName(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

/** Encodes a name one byte per char; returns null if a char does not fit in a byte. */
export function nameToBytes(name: string): Uint8Array | null {
  const out = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff) return null;
    out[i] = c;
  }
  return out;
}
