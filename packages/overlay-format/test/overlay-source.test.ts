import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  createOverlayWriter,
  type OverlayReader,
  type OverlayRecord,
  type OverlaySourceOptions,
  openOverlay,
  openOverlaySource,
} from '../src/index.js';
import { chunkSourceConformance } from './chunk-source.suite.js';
import { manifestFields, plain } from './fixtures.js';
import { plainServer, rangeServer, serve } from './http-servers.js';

const dir = testTempDir('overlay-format-');
let n = 0;
/** A fresh, empty spool directory: the tests check nothing else gets written there. */
const spoolDir = () => {
  const path = join(dir, `spool-${n++}`);
  mkdirSync(path);
  return path;
};

/** Counts the requests a handler gets. */
function counted(handler: RequestListener) {
  const seen = { requests: 0 };
  const listener: RequestListener = (req, res) => {
    seen.requests++;
    handler(req, res);
  };
  return { seen, listener };
}

chunkSourceConformance('openOverlaySource file', async (bytes) => {
  const file = join(dir, `conformance-${n++}.bin`);
  writeFileSync(file, bytes);
  return openOverlaySource(file, { spoolDir: spoolDir() });
});
chunkSourceConformance('openOverlaySource http-range', async (bytes) =>
  openOverlaySource(await serve(rangeServer(bytes)), { spoolDir: spoolDir() }),
);
chunkSourceConformance('openOverlaySource http-download', async (bytes) =>
  openOverlaySource(await serve(plainServer(bytes)), { spoolDir: spoolDir() }),
);

let overlayFile: string;
let overlayBytes: Buffer;
beforeAll(async () => {
  overlayFile = join(dir, 'served.zip');
  const writer = createOverlayWriter({ file: overlayFile, workers: 0, targetSegmentBytes: 4096 });
  for (let i = 0; i < 30; i++)
    await writer.add({
      space: 'disk',
      index: i,
      encoding: { kind: 'raw', data: new Uint8Array(4096).fill(i) },
    });
  await writer.finish(manifestFields());
  overlayBytes = readFileSync(overlayFile);
});

async function recordsOf(overlay: OverlayReader): Promise<unknown[]> {
  const out: OverlayRecord[] = [];
  for await (const r of overlay.records()) out.push(r);
  return plain(out);
}

/** Every onBytes call, to check the totals grow and end where they should. */
function progress(): {
  calls: [number, number | undefined][];
  onBytes: NonNullable<OverlaySourceOptions['onBytes']>;
} {
  const calls: [number, number | undefined][] = [];
  return { calls, onBytes: (received, total) => calls.push([received, total]) };
}

describe('openOverlaySource', () => {
  it('a local path is a file source; a missing one is not-found naming the path', async () => {
    const source = await openOverlaySource(overlayFile, { spoolDir: spoolDir() });
    expect(source.kind).toBe('file');
    await source.close?.();
    const missing = join(dir, 'nope.zip');
    await expect(openOverlaySource(missing, { spoolDir: spoolDir() })).rejects.toMatchObject({
      code: 'not-found',
      message: `overlay file ${missing} does not exist`,
    });
  });

  it('a server with Range support is read with ranges, counting the bytes of each response', async () => {
    const { calls, onBytes } = progress();
    const spool = spoolDir();
    const source = await openOverlaySource(await serve(rangeServer(overlayBytes)), {
      spoolDir: spool,
      onBytes,
    });
    expect(source.kind).toBe('http-range');
    const overlay = await openOverlay(source);
    const local = await openOverlay(overlayFile);
    expect(await recordsOf(overlay)).toEqual(await recordsOf(local));
    await Promise.all([overlay.close(), local.close(), source.close?.()]);
    expect(calls.length).toBeGreaterThan(overlay.segments.length);
    expect(calls.every(([, total]) => total === overlayBytes.length)).toBe(true);
    expect(calls.map(([r]) => r)).toEqual(calls.map(([r]) => r).sort((a, b) => a - b));
    expect(readdirSync(spool)).toEqual([]);
  });

  it('a server that ignores Range is downloaded once into spoolDir, removed on close()', async () => {
    const { seen, listener } = counted(plainServer(overlayBytes));
    const { calls, onBytes } = progress();
    const spool = spoolDir();
    const source = await openOverlaySource(await serve(listener), { spoolDir: spool, onBytes });
    expect(source.kind).toBe('http-download');
    expect(seen.requests).toBe(1); // the probe's 200 is the download
    expect(readdirSync(spool)).toHaveLength(1);
    expect(calls.at(-1)).toEqual([overlayBytes.length, overlayBytes.length]);
    const overlay = await openOverlay(source);
    expect(await recordsOf(overlay)).toHaveLength(30);
    await overlay.close();
    expect(seen.requests).toBe(1);
    await source.close?.();
    expect(readdirSync(spool)).toEqual([]);
  });

  it('a download over maxDownloadBytes is too-large, by its Content-Length or as it arrives; no spool file', async () => {
    const spool = spoolDir();
    const declared = await serve(plainServer(overlayBytes));
    const refused = await openOverlaySource(declared, { spoolDir: spool, maxDownloadBytes: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: 'too-large' });
    expect((refused as Error).message).toMatch(/is \d+ bytes, over the limit of 1000 bytes/);
    const chunked = await serve((_req, res) => {
      res.writeHead(200); // no Content-Length: only the running count can tell
      res.write(new Uint8Array(64 * 1024));
      res.end(new Uint8Array(64 * 1024));
    });
    const counted = await openOverlaySource(chunked, { spoolDir: spool, maxDownloadBytes: 100_000 }).catch(
      (e: unknown) => e,
    );
    expect(counted).toMatchObject({ code: 'too-large' });
    expect(readdirSync(spool)).toEqual([]);
  });

  it('a download that breaks off is truncated naming the URL and byte counts, and leaves no spool file', async () => {
    const spool = spoolDir();
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 100_000 });
      res.write(new Uint8Array(30_000), () => res.destroy());
    });
    const error = await openOverlaySource(url, { spoolDir: spool }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'OverlayFormatError', code: 'truncated' });
    expect((error as Error).message).toContain(url);
    expect((error as Error).message).toMatch(/after \d+ of 100000 bytes/);
    expect(readdirSync(spool)).toEqual([]);
  });

  it('a download that stalls times out as http-error (timeoutMs is an idle timeout)', async () => {
    const spool = spoolDir();
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 100_000 });
      res.write(new Uint8Array(1000));
    });
    await expect(openOverlaySource(url, { spoolDir: spool, timeoutMs: 200 })).rejects.toMatchObject({
      code: 'http-error',
      message: expect.stringContaining('timed out'),
    });
    expect(readdirSync(spool)).toEqual([]);
  });

  it('404 is http-error naming status and URL; other schemes are invalid-use', async () => {
    const url = await serve((_req, res) => res.writeHead(404).end('nope'));
    await expect(openOverlaySource(url, { spoolDir: spoolDir() })).rejects.toMatchObject({
      code: 'http-error',
      message: `GET ${url} answered HTTP 404`,
    });
    await expect(
      openOverlaySource('ftp://example.org/o.zip', { spoolDir: spoolDir() }),
    ).rejects.toMatchObject({
      code: 'invalid-use',
      message: expect.stringContaining('ftp:// is not supported'),
    });
  });
});
