// A token-bucket link throttle and a Range-capable HTTP file server behind it (the bench's "network").
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';

/**
 * Bytes may leave at `bytesPerSecond`, with bursts up to `burstBytes`. reserve(n, nowMs) takes n tokens
 * (the balance may go negative: a reservation) and returns how many ms the caller must wait before sending
 * them. Pure: the clock is the caller's. One bucket shared by every connection is one link.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    readonly bytesPerSecond: number,
    readonly burstBytes: number,
    nowMs = 0,
  ) {
    if (!(bytesPerSecond > 0) || !(burstBytes > 0)) throw new RangeError('rate and burst must be > 0');
    this.tokens = burstBytes;
    this.last = nowMs;
  }
  reserve(bytes: number, nowMs: number): number {
    const elapsed = Math.max(0, nowMs - this.last);
    this.last = Math.max(this.last, nowMs);
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsed * this.bytesPerSecond) / 1000);
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
  }
}

/** Megabits per second → bytes per second. */
export const mbps = (megabits: number) => (megabits * 1e6) / 8;

/** A parsed `Range: bytes=a-b` header against a file of `size` bytes; undefined for none or unsatisfiable. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    start = Math.max(0, size - Number(b));
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  return start <= end && start < size ? { start, end } : undefined;
}

const SLICE = 16 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ThrottledServer {
  readonly url: string;
  /** Changes the link rate (bytes/s; Infinity = unthrottled) for requests from now on. */
  setRate(bytesPerSecond: number): void;
  close(): Promise<void>;
}

/** Serves the files of `dir` by name, with Range support, every response body through one shared bucket. */
export async function startThrottledServer(dir: string): Promise<ThrottledServer> {
  let bucket: TokenBucket | undefined;
  const server: Server = createServer(async (req, res) => {
    try {
      const file = join(dir, basename(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
      const size = (await stat(file)).size;
      const range = parseRange(req.headers.range, size);
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      res.writeHead(range ? 206 : 200, {
        'content-length': String(end - start + 1),
        'accept-ranges': 'bytes',
        ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      });
      if (req.method === 'HEAD' || end < start) return void res.end();
      const link = bucket;
      for await (const piece of createReadStream(file, { start, end, highWaterMark: SLICE })) {
        const buf = piece as Buffer;
        if (link !== undefined) {
          const wait = link.reserve(buf.length, performance.now());
          if (wait > 0) await sleep(wait);
        }
        if (!res.write(buf)) await new Promise((r) => res.once('drain', r));
        if (res.destroyed) return;
      }
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(404).end();
      else res.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setRate(bytesPerSecond) {
      bucket = Number.isFinite(bytesPerSecond)
        ? new TokenBucket(bytesPerSecond, 64 * 1024, performance.now())
        : undefined;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
