import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hashChunk } from '@cloudlet/delta';
import { afterEach, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { BaseNotFoundError, openBaseRegistry, type RegistryProgress } from '../src/index.js';
import {
  allocatedBytes,
  DEFAULT_MEMORY,
  defaultSpec,
  patternPage,
  registerSynthetic,
  tree,
} from './helpers.js';

const MiB = 1024 * 1024;

async function twoHomes() {
  const root = testTempDir('cloudlet-registry-');
  const source = await openBaseRegistry({ home: join(root, 'source') });
  const target = await openBaseRegistry({ home: join(root, 'target') });
  afterEach(() => {
    source.close();
    target.close();
  });
  return { root, source, target };
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Stored size of each member of a zip. */
async function memberSizes(zip: string): Promise<Record<string, number>> {
  const yauzl = await import('yauzl');
  const archive = await yauzl.default.openPromise(zip);
  const sizes: Record<string, number> = {};
  for await (const entry of archive.eachEntry()) sizes[entry.fileName] = entry.compressedSize;
  return sizes;
}

/** A port nothing listens on (just released by a server of ours). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Serves `file` at /base.zip on 127.0.0.1; any other path answers 404. */
async function serve(file: string): Promise<string> {
  const body = await readFile(file);
  const http = createServer((req, res) => {
    if (req.url !== '/base.zip') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such base');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    // In pieces, so the importer sees a real stream.
    let at = 0;
    const next = () => {
      if (at >= body.length) return res.end();
      res.write(body.subarray(at, at + 64 * 1024), next);
      at += 64 * 1024;
    };
    next();
  });
  server = http;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

describe('export → import', () => {
  it('round-trips into a second home: same id, byte-identical files, working lookup', async () => {
    const { root, source, target } = await twoHomes();
    const spec = defaultSpec({ nics: [{ portForwards: [{ guestPort: 80 }] }] });
    const { base } = await registerSynthetic(source, { label: 'round trip', spec });
    const zip = join(root, 'base.zip');
    const progress: RegistryProgress[] = [];
    const exported = await source.exportBase(base.id, zip, { onProgress: (p) => progress.push(p) });
    expect(exported).toEqual({ file: zip, bytes: (await stat(zip)).size });
    expect(progress.at(-1)).toEqual({
      stage: 'compress',
      bytesDone: base.diskBytes + base.memoryBytes,
      totalBytes: base.diskBytes + base.memoryBytes,
    });

    const imported: RegistryProgress[] = [];
    const result = await target.importBase(zip, { onProgress: (p) => imported.push(p) });
    expect(result.alreadyPresent).toBe(false);
    expect(result.base.id).toBe(base.id);
    expect(result.base.label).toBe('round trip');
    expect(result.base.createdAt).toBe(base.createdAt);
    // The disk is indexed while it is decompressed; only memory.snap is read back.
    expect(new Set(imported.map((p) => p.stage))).toEqual(new Set(['decompress', 'index-memory']));
    for (const file of ['disk.raw', 'memory.snap', 'disk.idx', 'memory.idx', 'base.json']) {
      const a = await readFile(join(base.paths.dir, file));
      const b = await readFile(join(result.base.paths.dir, file));
      expect(a.equals(b), file).toBe(true);
    }
    const lookup = await target.openLookup(base.id);
    expect(lookup.find(hashChunk(patternPage(7919 + 2)))).toEqual({ space: 'memory', index: 2 });
    expect(target.list().map((b) => b.id)).toEqual([base.id]);
    expect(await readdir(join(root, 'target', 'tmp'))).toEqual([]);
    expect((await readdir(root)).sort()).toEqual(['base.zip', 'source', 'target']);
  });

  it('the package is a zip of stored members: base.json, disk.raw.zst, memory.snap.zst', async () => {
    const { root, source } = await twoHomes();
    const { base } = await registerSynthetic(source);
    const zip = join(root, 'base.zip');
    await source.exportBase(base.id, zip);
    const yauzl = await import('yauzl');
    const archive = await yauzl.default.openPromise(zip);
    const entries = [];
    for await (const entry of archive.eachEntry()) entries.push(entry);
    expect(entries.map((e) => e.fileName)).toEqual(['base.json', 'disk.raw.zst', 'memory.snap.zst']);
    expect(entries.map((e) => e.compressionMethod)).toEqual([0, 0, 0]);
  });

  it('importing the same base twice is a no-op that says so', async () => {
    const { root, source, target } = await twoHomes();
    const { base } = await registerSynthetic(source);
    const zip = join(root, 'base.zip');
    await source.exportBase(base.id, zip);
    await target.importBase(zip);
    const before = await tree(join(root, 'target'));
    const again = await target.importBase(zip);
    expect(again.alreadyPresent).toBe(true);
    expect(again.base.id).toBe(base.id);
    expect(await tree(join(root, 'target'))).toEqual(before);
    // Into the home it came from, too.
    expect((await source.importBase(zip)).alreadyPresent).toBe(true);
  });

  it('carries kernel and initrd', async () => {
    const { root, source, target } = await twoHomes();
    await writeFile(join(root, 'vmlinuz'), 'the kernel');
    await writeFile(join(root, 'initrd'), 'the initrd');
    const spec = defaultSpec({ kernel: join(root, 'vmlinuz'), initrd: join(root, 'initrd') });
    const { base } = await registerSynthetic(source, { spec });
    await source.exportBase(base.id, join(root, 'base.zip'));
    const { base: copy } = await target.importBase(join(root, 'base.zip'));
    expect(copy.id).toBe(base.id);
    expect(await readFile(copy.paths.kernel ?? '', 'utf8')).toBe('the kernel');
    expect(await readFile(copy.paths.initrd ?? '', 'utf8')).toBe('the initrd');
  });

  it('a mostly-zero 256 MiB sparse disk exports tiny and imports sparse', async () => {
    const { root, source, target } = await twoHomes();
    // 16 data chunks (64 KiB of incompressible pattern) in 256 MiB of holes.
    const { base } = await registerSynthetic(source, {
      disk: { bytes: 256 * MiB, dataFraction: 1 / 4096 },
      memory: { ramPages: 16 },
    });
    const zip = join(root, 'base.zip');
    await source.exportBase(base.id, zip);
    const sizes = await memberSizes(zip);
    expect(sizes['disk.raw.zst']).toBeLessThan(64 * 1024 + 16 * 1024);
    const { base: copy } = await target.importBase(zip);
    expect((await stat(copy.paths.disk)).size).toBe(256 * MiB);
    expect(await allocatedBytes(copy.paths.disk)).toBeLessThan(2 * MiB);
  });

  it('imports from an http URL', async () => {
    const { root, source, target } = await twoHomes();
    const { base } = await registerSynthetic(source);
    const zip = join(root, 'base.zip');
    await source.exportBase(base.id, zip);
    const url = await serve(zip);
    const progress: RegistryProgress[] = [];
    const { base: copy } = await target.importBase(`${url}/base.zip`, {
      onProgress: (p) => progress.push(p),
    });
    expect(copy.id).toBe(base.id);
    const downloads = progress.filter((p) => p.stage === 'download');
    expect(downloads.length).toBeGreaterThan(1);
    expect(downloads.at(-1)).toEqual({
      stage: 'download',
      bytesDone: (await stat(zip)).size,
      totalBytes: (await stat(zip)).size,
    });
    expect(await readdir(join(root, 'target', 'tmp'))).toEqual([]);
  });

  it('a URL answering 404 is a clear error and leaves nothing', async () => {
    const { root, target } = await twoHomes();
    await writeFile(join(root, 'unused.zip'), 'x');
    const url = await serve(join(root, 'unused.zip'));
    const error = await target.importBase(`${url}/missing.zip`).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'download-failed',
      message: `cannot download ${url}/missing.zip: HTTP 404 Not Found`,
    });
    expect(target.list()).toEqual([]);
    expect(await readdir(join(root, 'target', 'tmp'))).toEqual([]);
    expect(await readdir(join(root, 'target', 'bases'))).toEqual([]);
  });

  it('a download above maxBytes is cut and refused', async () => {
    const { root, source, target } = await twoHomes();
    const { base } = await registerSynthetic(source);
    const zip = join(root, 'base.zip');
    await source.exportBase(base.id, zip);
    const url = await serve(zip);
    const error = await target.importBase(`${url}/base.zip`, { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'too-large' });
    expect(await readdir(join(root, 'target', 'tmp'))).toEqual([]);
  });

  it('a refused connection is a clear error', async () => {
    const { target } = await twoHomes();
    const url = `http://127.0.0.1:${await closedPort()}/base.zip`;
    const error = await target.importBase(url).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'download-failed' });
    expect((error as Error).message).toMatch(new RegExp(`^cannot download ${url}: .*ECONNREFUSED`));
  });
});

describe('exportBase failures', () => {
  it('an unknown id is BaseNotFoundError and writes nothing', async () => {
    const { root, source } = await twoHomes();
    await registerSynthetic(source);
    const error = await source.exportBase('0123456789abcdef', join(root, 'x.zip')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BaseNotFoundError);
    expect((await readdir(root)).sort()).toEqual(['source', 'target']);
  });

  it('an existing target is refused unless overwrite is set', async () => {
    const { root, source } = await twoHomes();
    const { base } = await registerSynthetic(source);
    const zip = join(root, 'base.zip');
    await writeFile(zip, 'precious');
    const error = await source.exportBase(base.id, zip).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'exists' });
    expect(await readFile(zip, 'utf8')).toBe('precious');
    await source.exportBase(base.id, zip, { overwrite: true });
    expect((await readFile(zip)).subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
    expect((await readdir(root)).sort()).toEqual(['base.zip', 'source', 'target']);
  });

  it('a base whose disk vanished fails without leaving a partial file', async () => {
    const { root, source } = await twoHomes();
    const { base } = await registerSynthetic(source, { memory: { ...DEFAULT_MEMORY } });
    const { rm } = await import('node:fs/promises');
    await rm(base.paths.disk);
    const error = await source.exportBase(base.id, join(root, 'base.zip')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((await readdir(root)).sort()).toEqual(['source', 'target']);
  });
});
