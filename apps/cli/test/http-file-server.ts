// A local HTTP server for one file, with or without Range support, for synthesis from a URL.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FileServer {
  readonly url: string;
  /** Requests seen, e.g. "GET bytes=0-0". */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function serveFile(file: string, options: { range?: boolean } = {}): Promise<FileServer> {
  const size = (await stat(file)).size;
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.headers.range ?? '-'}`);
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (options.range === false || match === null) {
      res.writeHead(200, { 'content-length': size, 'accept-ranges': 'none' });
      if (req.method === 'HEAD') return res.end();
      return createReadStream(file).pipe(res);
    }
    const start = Number(match[1]);
    const end = Math.min(match[2] === '' ? size - 1 : Number(match[2]), size - 1);
    if (start >= size) {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      return res.end();
    }
    res.writeHead(206, {
      'content-range': `bytes ${start}-${end}/${size}`,
      'content-length': end - start + 1,
    });
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${file.split('/').pop()}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
