// A local HTTP server for one file, with or without Range support and optionally throttled, for tests that
// fetch overlays by URL (synthesis, early start). Loopback only.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FileServerOptions {
  /** Honour `Range: bytes=a-b` (default true); without it every GET gets the whole file. */
  readonly range?: boolean;
  /** Share this many bytes per second among all responses (default: unthrottled). */
  readonly bytesPerSecond?: number;
  /** Break off (destroy the connection) a response when this says so for the slice [start, end) it is about to send. */
  readonly failWhen?: (start: number, end: number) => boolean;
}

export interface ServedRequest {
  readonly method: string;
  readonly range: string | undefined;
  /** File offsets sent, [start, end). */
  readonly start: number;
  readonly end: number;
  /** When the last byte was handed to the socket (ms since the server started; undefined if broken off). */
  finishedAt?: number;
}

export interface FileServer {
  readonly url: string;
  readonly size: number;
  readonly requests: ServedRequest[];
  /** ms since the server started. */
  now(): number;
  close(): Promise<void>;
}

const SLICE = 16 * 1024;

export async function serveFile(file: string, options: FileServerOptions = {}): Promise<FileServer> {
  const size = (await stat(file)).size;
  const started = performance.now();
  const now = () => performance.now() - started;
  const requests: ServedRequest[] = [];
  // One token bucket for every response: the link is shared, as a real one would be.
  let linkFreeAt = 0;
  const throttle = async (bytes: number) => {
    if (options.bytesPerSecond === undefined) return;
    linkFreeAt = Math.max(linkFreeAt, now()) + (bytes / options.bytesPerSecond) * 1000;
    const wait = linkFreeAt - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  };
  const send = async (res: ServerResponse, served: ServedRequest) => {
    for (let at = served.start; at < served.end; at += SLICE) {
      const end = Math.min(served.end, at + SLICE);
      if (options.failWhen?.(at, end) === true) return void res.destroy();
      await throttle(end - at);
      if (res.destroyed) return; // the client went away (or the server closed) while this one waited
      const chunk = await readRange(file, at, end);
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      if (res.destroyed) return;
    }
    served.finishedAt = now();
    res.end();
  };
  const server = createServer((req, res) => {
    const range = req.headers.range;
    const match = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
    const ranged = options.range !== false && match !== null;
    let start = 0;
    let end = size;
    if (ranged) {
      start = Number(match[1]);
      end = Math.min(match[2] === '' ? size : Number(match[2]) + 1, size);
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        return res.end();
      }
      res.writeHead(206, {
        'content-range': `bytes ${start}-${end - 1}/${size}`,
        'content-length': end - start,
      });
    } else {
      res.writeHead(200, { 'content-length': size, 'accept-ranges': 'none' });
    }
    const served: ServedRequest = { method: req.method ?? 'GET', range, start, end };
    requests.push(served);
    if (req.method === 'HEAD') return res.end();
    send(res, served).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${file.split('/').pop()}`,
    size,
    requests,
    now,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readRange(file: string, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of createReadStream(file, { start, end: end - 1 })) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
