import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll } from 'vitest';

const servers: Server[] = [];
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections(); // fetch keeps loopback connections alive
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A loopback server, closed after the file's tests; resolves to its URL. */
export async function serve(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/overlay.zip`;
}

/** Stops the most recently started server now (a refused connection). */
export async function stopLastServer(): Promise<void> {
  const server = servers.pop() as Server;
  await new Promise((resolve) => server.close(resolve));
}

/** Single-range support the way static file servers do it: 206, clamped end, 416 past the end. */
export function rangeServer(bytes: Uint8Array): RequestListener {
  return (req, res) => {
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!match) {
      res.writeHead(200, { 'content-length': bytes.length, 'accept-ranges': 'bytes' });
      res.end(req.method === 'HEAD' ? undefined : bytes);
      return;
    }
    const start = Number(match[1]);
    const end = Math.min(match[2] ? Number(match[2]) : bytes.length - 1, bytes.length - 1);
    if (start >= bytes.length || end < start) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}` });
    res.end(bytes.subarray(start, end + 1));
  };
}

/** A server that ignores Range: always 200 and the whole body. */
export function plainServer(bytes: Uint8Array): RequestListener {
  return (req, res) => {
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  };
}
