// Local HTTP servers for files, with or without Range support, every response body through one shared token
// bucket (a link): for tests that fetch overlays by URL (synthesis, early start) and for the bench's network.
// Loopback only.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { TokenBucket } from './token-bucket.js';

export interface FileServerOptions {
  /** Honour `Range: bytes=…` (default true); without it every GET gets the whole file. */
  readonly range?: boolean;
  /** Share this many bytes per second among all responses (default: unthrottled; see setRate). */
  readonly bytesPerSecond?: number;
  /** Break off (destroy the connection) a response when this says so for the slice [start, end) it is about to send. */
  readonly failWhen?: (start: number, end: number) => boolean;
  /**
   * Runs before each slice of a response is sent, synchronously: whatever it does (e.g. fill a file system)
   * has happened before the client gets that slice.
   */
  readonly beforeSlice?: (request: ServedRequest, start: number, end: number) => void;
  /** Each slice [start, end) of a response for which this returns a promise waits for it (withholds a response). */
  readonly hold?: (request: ServedRequest, start: number, end: number) => Promise<void> | undefined;
}

export interface ServedRequest {
  readonly method: string;
  /** The file's name. */
  readonly name: string;
  readonly range: string | undefined;
  /** File offsets sent, [start, end). */
  readonly start: number;
  readonly end: number;
  /** When the last byte was handed to the socket (ms since the server started; undefined if broken off). */
  finishedAt?: number;
}

/** A server for the files of a folder, by name (`serveDirectory`). */
export interface DirectoryServer {
  /** http://127.0.0.1:PORT — a file is at `${url}/${name}`. */
  readonly url: string;
  readonly requests: ServedRequest[];
  /** ms since the server started. */
  now(): number;
  /** Changes the link rate (bytes/s; Infinity = unthrottled) for what is sent from now on. */
  setRate(bytesPerSecond: number): void;
  close(): Promise<void>;
}

/** A server for one file (`serveFile`). */
export interface FileServer extends DirectoryServer {
  /** The file's URL. */
  readonly url: string;
  readonly size: number;
}

const SLICE = 16 * 1024;
const BURST_BYTES = 64 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A parsed `Range: bytes=a-b` header against a file of `size` bytes, [start, end); undefined for none. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  const start = a === '' ? Math.max(0, size - Number(b)) : Number(a);
  const end = a === '' || b === '' ? size : Math.min(Number(b) + 1, size);
  return start < end ? { start, end } : 'unsatisfiable';
}

/** Serves `file` at `/<its name>`. */
export async function serveFile(file: string, options: FileServerOptions = {}): Promise<FileServer> {
  const size = (await stat(file)).size;
  const server = await startFileServer((name) => (name === basename(file) ? file : undefined), options);
  return { ...server, url: `${server.url}/${basename(file)}`, size };
}

/** Serves the files of `dir` by name. */
export function serveDirectory(dir: string, options: FileServerOptions = {}): Promise<DirectoryServer> {
  return startFileServer((name) => join(dir, name), options);
}

async function startFileServer(
  fileFor: (name: string) => string | undefined,
  options: FileServerOptions,
): Promise<DirectoryServer> {
  const started = performance.now();
  const now = () => performance.now() - started;
  const requests: ServedRequest[] = [];
  const bucketAt = (bytesPerSecond: number | undefined) =>
    bytesPerSecond !== undefined && Number.isFinite(bytesPerSecond)
      ? new TokenBucket(bytesPerSecond, BURST_BYTES, now())
      : undefined;
  let link = bucketAt(options.bytesPerSecond);
  const send = async (res: ServerResponse, file: string, served: ServedRequest) => {
    for (let at = served.start; at < served.end; at += SLICE) {
      const end = Math.min(served.end, at + SLICE);
      options.beforeSlice?.(served, at, end);
      await options.hold?.(served, at, end);
      if (options.failWhen?.(at, end) === true) return void res.destroy();
      const wait = link?.reserve(end - at, now()) ?? 0;
      if (wait > 0) await sleep(wait);
      if (res.destroyed) return; // the client went away (or the server closed) while this one waited
      if (!res.write(await readRange(file, at, end)))
        await new Promise((resolve) => res.once('drain', resolve));
      if (res.destroyed) return;
    }
    served.finishedAt = now();
    res.end();
  };
  const server = createServer(async (req, res) => {
    const name = basename(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = fileFor(name);
    const size =
      file === undefined
        ? undefined
        : await stat(file).then(
            (s) => s.size,
            () => undefined,
          );
    if (file === undefined || size === undefined) return void res.writeHead(404).end();
    const range = options.range === false ? undefined : parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      return void res.end();
    }
    const { start, end } = range ?? { start: 0, end: size };
    res.writeHead(range === undefined ? 200 : 206, {
      'content-length': end - start,
      'accept-ranges': options.range === false ? 'none' : 'bytes',
      ...(range === undefined ? {} : { 'content-range': `bytes ${start}-${end - 1}/${size}` }),
    });
    const served: ServedRequest = { method: req.method ?? 'GET', name, range: req.headers.range, start, end };
    requests.push(served);
    if (req.method === 'HEAD') return void res.end();
    send(res, file, served).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    now,
    setRate(bytesPerSecond) {
      link = bucketAt(bytesPerSecond);
    },
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
