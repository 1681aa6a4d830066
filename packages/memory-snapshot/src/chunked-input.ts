import { MigrationStreamError } from './errors.js';

const EMPTY = new Uint8Array(0);

/**
 * Pull-based byte reader over an async iterable of chunks. It holds the current chunk plus the few
 * chunks pulled to satisfy a read that straddles chunk boundaries, never the whole stream.
 * Reads are synchronous and assume the caller awaited `fill(n)` first; `fill` only awaits when the
 * buffered bytes run short, which keeps the per-record hot path free of promises.
 * Chunks must not be mutated after the iterator yields them (Node streams never do): `take` hands
 * out views into them.
 */
export class ChunkedInput {
  private readonly iterator: AsyncIterator<unknown>;
  private chunk: Uint8Array = EMPTY;
  private pos = 0;
  /** Chunks pulled after `chunk`, oldest first. */
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  /** Stream offset of chunk[0]. */
  private chunkStart = 0;
  private ended = false;
  /** Total bytes pulled from the source so far. */
  received = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Stream offset of the next unread byte. */
  get offset(): number {
    return this.chunkStart + this.pos;
  }

  get buffered(): number {
    return this.chunk.length - this.pos + this.queued;
  }

  /** Pulls chunks until at least n bytes are buffered; false if the source ended first. */
  async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      const c = await this.pull();
      if (c === null) return false;
      if (this.pos === this.chunk.length && this.queued === 0) {
        this.chunkStart += this.chunk.length;
        this.chunk = c;
        this.pos = 0;
      } else {
        this.queue.push(c);
        this.queued += c.length;
      }
    }
    return true;
  }

  /** Next non-empty chunk from the source, or null at its end. */
  private async pull(): Promise<Uint8Array | null> {
    while (!this.ended) {
      const r = await this.iterator.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const c = r.value;
      if (!(c instanceof Uint8Array)) throw new TypeError('migration stream chunks must be Uint8Array');
      if (c.length === 0) continue;
      this.received += c.length;
      return c;
    }
    return null;
  }

  /** Moves to the next queued chunk once the current one is used up. */
  private advance(): void {
    const next = this.queue.shift();
    if (next === undefined)
      throw new MigrationStreamError('truncated', this.received, 'read past buffered data');
    this.chunkStart += this.chunk.length;
    this.chunk = next;
    this.queued -= next.length;
    this.pos = 0;
  }

  u8(): number {
    if (this.pos === this.chunk.length) this.advance();
    return this.chunk[this.pos++] as number;
  }

  peekU8(): number {
    if (this.pos === this.chunk.length) this.advance();
    return this.chunk[this.pos] as number;
  }

  be32(): number {
    const c = this.chunk;
    const p = this.pos;
    if (c.length - p >= 4) {
      this.pos = p + 4;
      return (
        (((c[p] as number) << 24) |
          ((c[p + 1] as number) << 16) |
          ((c[p + 2] as number) << 8) |
          (c[p + 3] as number)) >>>
        0
      );
    }
    return ((this.u8() << 24) | (this.u8() << 16) | (this.u8() << 8) | this.u8()) >>> 0;
  }

  /** Consumes n bytes: a zero-copy view if they lie in one chunk, else a fresh copy. */
  take(n: number): Uint8Array {
    const c = this.chunk;
    const p = this.pos;
    if (c.length - p >= n) {
      this.pos = p + n;
      return c.subarray(p, p + n);
    }
    const out = new Uint8Array(n);
    this.copyInto(out);
    return out;
  }

  /** Returns the next n bytes without consuming them (a copy when they straddle chunks). */
  peek(n: number): Uint8Array {
    const c = this.chunk;
    const p = this.pos;
    if (c.length - p >= n) return c.subarray(p, p + n);
    const out = new Uint8Array(n);
    let filled = Math.min(n, c.length - p);
    out.set(c.subarray(p, p + filled));
    for (const q of this.queue) {
      if (filled === n) break;
      const part = Math.min(n - filled, q.length);
      out.set(q.subarray(0, part), filled);
      filled += part;
    }
    return out;
  }

  skip(n: number): void {
    let left = n;
    while (left > 0) {
      if (this.pos === this.chunk.length) this.advance();
      const step = Math.min(left, this.chunk.length - this.pos);
      this.pos += step;
      left -= step;
    }
  }

  private copyInto(out: Uint8Array): void {
    let filled = 0;
    while (filled < out.length) {
      if (this.pos === this.chunk.length) this.advance();
      const step = Math.min(out.length - filled, this.chunk.length - this.pos);
      out.set(this.chunk.subarray(this.pos, this.pos + step), filled);
      this.pos += step;
      filled += step;
    }
  }

  /** Hands over every buffered byte (as chunk views) and then each remaining source chunk. */
  async *rest(): AsyncGenerator<Uint8Array> {
    if (this.pos < this.chunk.length) yield this.chunk.subarray(this.pos);
    this.pos = this.chunk.length;
    while (this.queue.length > 0) {
      this.advance();
      this.pos = this.chunk.length;
      yield this.chunk;
    }
    for (let c = await this.pull(); c !== null; c = await this.pull()) {
      this.chunkStart += this.chunk.length;
      this.chunk = c;
      this.pos = c.length;
      yield c;
    }
  }

  /** Releases the source (e.g. destroys a Node stream) when reading stops early. */
  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }
}
