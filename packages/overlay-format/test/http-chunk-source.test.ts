import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  createOverlayWriter,
  httpChunkSource,
  type OverlayReader,
  type OverlayRecord,
  openOverlay,
} from '../src/index.js';
import { chunkSourceConformance } from './chunk-source.suite.js';
import { manifestFields } from './fixtures.js';
import { plainServer, rangeServer, serve, stopLastServer } from './http-servers.js';

chunkSourceConformance('http', async (bytes) => httpChunkSource(await serve(rangeServer(bytes))));

async function collect(overlay: OverlayReader): Promise<OverlayRecord[]> {
  const out: OverlayRecord[] = [];
  for await (const r of overlay.records()) out.push(r);
  return out;
}

describe('httpChunkSource', () => {
  it('reads an overlay over HTTP exactly as from the file', async () => {
    const file = join(testTempDir('overlay-format-'), 'served.zip');
    const writer = createOverlayWriter({ file, workers: 0, targetSegmentBytes: 256 });
    await writer.add({ space: 'memory', index: 3, encoding: { kind: 'zero' } });
    await writer.add({
      space: 'disk',
      index: 1,
      encoding: { kind: 'raw', data: new Uint8Array(4096).fill(7) },
    });
    await writer.add({ space: 'disk', index: 9, encoding: { kind: 'base-disk', index: 2 } });
    await writer.addBlob('device-state', new Uint8Array([1, 2, 3]));
    await writer.finish(manifestFields());

    const local = await openOverlay(file);
    const remote = await openOverlay(httpChunkSource(await serve(rangeServer(readFileSync(file)))));
    expect(remote.manifest).toEqual(local.manifest);
    const records = await collect(remote);
    expect(records).toHaveLength(3);
    expect(records).toEqual(await collect(local));
    expect(Array.from(await remote.readBlob('device-state'))).toEqual([1, 2, 3]);
    await Promise.all([local.close(), remote.close()]);
  });

  it('asks for the size once', async () => {
    let requests = 0;
    const handler = rangeServer(new Uint8Array(10));
    const source = httpChunkSource(
      await serve((req, res) => {
        requests++;
        handler(req, res);
      }),
    );
    expect([await source.size(), await source.size()]).toEqual([10, 10]);
    expect(requests).toBe(1);
  });

  it('refuses a server that ignores Range with no-range-support', async () => {
    const bytes = new Uint8Array(1000);
    const source = httpChunkSource(await serve(plainServer(bytes)));
    expect(await source.size()).toBe(1000); // from HEAD's Content-Length
    await expect(source.read(10, 20)).rejects.toMatchObject({
      code: 'no-range-support',
      message: expect.stringContaining('without Range support'),
    });
  });

  it('reports 404 as http-error naming status and URL', async () => {
    const url = await serve((_req, res) => res.writeHead(404).end('nope'));
    const source = httpChunkSource(url);
    for (const attempt of [source.size(), source.read(0, 10)]) {
      const error = await attempt.catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'http-error' });
      expect((error as Error).message).toContain('HTTP 404');
      expect((error as Error).message).toContain(url);
    }
  });

  it('reports network failures and timeouts as http-error with the cause', async () => {
    const closed = await serve((_req, res) => res.end());
    await stopLastServer();
    const refused = httpChunkSource(closed).read(0, 1);
    await expect(refused).rejects.toMatchObject({ code: 'http-error', cause: expect.anything() });

    const silent = httpChunkSource(await serve(() => {}), { timeoutMs: 200 });
    await expect(silent.read(0, 1)).rejects.toMatchObject({
      code: 'http-error',
      message: expect.stringContaining('timed out'),
    });
  });

  it('fails, not hangs, when the server sends fewer bytes than asked', async () => {
    // Honest headers for a short body, then a body cut off mid-way by a dropped connection.
    const short = httpChunkSource(
      await serve((_req, res) => {
        res.writeHead(206, { 'content-range': 'bytes 0-99/1000', 'content-length': 50 });
        res.end(new Uint8Array(50));
      }),
    );
    await expect(short.read(0, 100)).rejects.toMatchObject({ code: 'truncated' });

    const cut = httpChunkSource(
      await serve((_req, res) => {
        res.writeHead(206, { 'content-range': 'bytes 0-99/1000', 'content-length': 100 });
        res.write(new Uint8Array(50), () => res.destroy());
      }),
      { timeoutMs: 5000 },
    );
    await expect(cut.read(0, 100)).rejects.toMatchObject({ code: 'truncated' });
  });
});
