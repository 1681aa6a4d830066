import { OverlayFormatError } from './errors.js';

/** Unsigned LEB128 up to 2^53 - 1 (chunk indexes of multi-TiB disks do not fit 32 bits). */
export function varintLength(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) n++;
  return n;
}

/** Writes `value` at `at`, returns the offset after it. */
export function writeVarint(out: Uint8Array, at: number, value: number): number {
  let v = value;
  let i = at;
  while (v >= 0x80) {
    out[i++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[i++] = v;
  return i;
}

/** A cursor over bytes whose reads throw 'bad-record' instead of running past the end. */
export class ByteReader {
  offset = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {}

  get done(): boolean {
    return this.offset >= this.bytes.length;
  }

  byte(): number {
    const b = this.bytes[this.offset];
    if (b === undefined) throw this.fail('ends in the middle of a record');
    this.offset++;
    return b;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) break;
        return value;
      }
      scale *= 0x80;
    }
    throw this.fail('has a varint beyond 2^53');
  }

  take(length: number): Uint8Array {
    if (this.offset + length > this.bytes.length) throw this.fail(`ends inside a ${length}-byte payload`);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  fail(why: string): OverlayFormatError {
    return new OverlayFormatError('bad-record', `${this.what} ${why} (at byte ${this.offset})`);
  }
}
