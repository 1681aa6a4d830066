import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BaseRegistry, openBaseRegistry, type RegistryErrorCode } from '../src/index.js';
import { DEFAULT_DISK, registerSynthetic, tree } from './helpers.js';
import { type UnpackedPackage, unpackBase, writePackage, writeZip, zst } from './package-builder.js';

// One good base and its package, shared; every test crafts a bad package from its parts and
// imports it into a home that already holds one (different) base.
let root: string;
let good: UnpackedPackage;
let goodZip: string;
let target: BaseRegistry;
let targetHome: string;
let packages: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cloudlet-import-errors-'));
  const source = await openBaseRegistry({ home: join(root, 'source') });
  const { base } = await registerSynthetic(source);
  goodZip = join(root, 'good.zip');
  await source.exportBase(base.id, goodZip);
  good = await unpackBase(base.paths);
  source.close();
  targetHome = join(root, 'target');
  target = await openBaseRegistry({ home: targetHome });
  await registerSynthetic(target, { disk: { ...DEFAULT_DISK, seed: 99 } });
});

afterAll(async () => {
  target.close();
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  packages = await mkdtemp(join(root, 'packages-'));
});

/** Imports `zip`, expects a RegistryError, and checks that nothing was registered or left behind. */
async function refused(zip: string, code: RegistryErrorCode, message: RegExp | string, maxBytes?: number) {
  const listBefore = target.list().map((b) => b.id);
  const homeBefore = await tree(targetHome);
  const packagesBefore = await tree(packages);
  const error = await target
    .importBase(zip, maxBytes === undefined ? {} : { maxBytes })
    .catch((e: unknown) => e);
  expect(error).toMatchObject({ name: 'RegistryError', code });
  if (typeof message === 'string') expect((error as Error).message).toBe(message);
  else expect((error as Error).message).toMatch(message);
  expect(target.list().map((b) => b.id)).toEqual(listBefore);
  expect(await readdir(join(targetHome, 'tmp'))).toEqual([]);
  expect(await tree(targetHome)).toEqual(homeBefore);
  expect(await tree(packages)).toEqual(packagesBefore);
}

const zipPath = () => join(packages, 'bad.zip');
const withManifest = (change: (m: Record<string, unknown> & UnpackedPackage['manifest']) => void) => {
  const manifest = structuredClone(good.manifest);
  change(manifest);
  return manifest;
};
const flipped = (bytes: Buffer, at: number) => {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
};

describe('importBase refuses bad packages with a clear error and leaves nothing', () => {
  it('not a zip', async () => {
    await writeFile(zipPath(), 'this is not a zip file at all, just text');
    await refused(zipPath(), 'not-zip', /^not a zip file \(/);
  });

  it('a missing file', async () => {
    await refused(join(packages, 'nope.zip'), 'not-zip', /^not a zip file \(ENOENT/);
  });

  it('a truncated zip (half of it, and all but the last 10 bytes)', async () => {
    const bytes = await readFile(goodZip);
    await writeFile(zipPath(), bytes.subarray(0, bytes.length >> 1));
    await refused(zipPath(), 'not-zip', /^truncated or damaged zip file \(/);
    await writeFile(zipPath(), bytes.subarray(0, bytes.length - 10));
    await refused(zipPath(), 'not-zip', /^truncated or damaged zip file \(/);
  });

  it('entries with ../, absolute paths, drive letters or backslashes', async () => {
    const cases: [string, string][] = [
      ['../evil.zst', '"../evil.zst" (parent directory "..")'],
      ['a/../../b', '"a/../../b" (parent directory "..")'],
      ['/etc/passwd', '"/etc/passwd" (absolute path)'],
      ['C:/windows', '"C:/windows" (absolute path)'],
      ['dir\\x.zst', '"dir\\\\x.zst" (backslash)'],
    ];
    for (const [name, shown] of cases) {
      const placeholder = 'Q'.repeat(name.length);
      await writeZip(
        zipPath(),
        [
          { name: 'base.json', data: Buffer.from('{}') },
          { name: placeholder, data: Buffer.from('x') },
        ],
        [[placeholder, name]],
      );
      await refused(zipPath(), 'bad-package', `unsafe member name ${shown}`);
    }
  });

  it('a missing member', async () => {
    await writeZip(zipPath(), [
      { name: 'base.json', data: Buffer.from(JSON.stringify(good.manifest)) },
      { name: 'disk.raw.zst', data: zst(good.disk) },
    ]);
    await refused(zipPath(), 'bad-package', 'missing member "memory.snap.zst"');
    await writeZip(zipPath(), [{ name: 'disk.raw.zst', data: zst(good.disk) }]);
    await refused(zipPath(), 'bad-package', 'missing member "base.json"');
  });

  it('an extra member (unknown, or a kernel the spec does not boot)', async () => {
    await writePackage(zipPath(), good, [{ name: 'notes.txt', data: Buffer.from('hi') }]);
    await refused(zipPath(), 'bad-package', 'unexpected member "notes.txt"');
    await writePackage(zipPath(), good, [{ name: 'kernel.zst', data: zst('k') }]);
    await refused(zipPath(), 'bad-package', 'unexpected member "kernel.zst"');
  });

  it('a duplicate member, a directory, a symlink, a deflated member', async () => {
    await writePackage(zipPath(), good, [{ name: 'disk.raw.zst', data: zst(good.disk) }]);
    await refused(zipPath(), 'bad-package', 'duplicate member "disk.raw.zst"');
    await writePackage(zipPath(), good, [{ name: 'bases/', directory: true }]);
    await refused(zipPath(), 'bad-package', 'unexpected directory "bases/"');
    await writeZip(zipPath(), [
      { name: 'base.json', data: Buffer.from(JSON.stringify(good.manifest)) },
      { name: 'disk.raw.zst', data: Buffer.from('/etc/shadow'), mode: 0o120777 },
      { name: 'memory.snap.zst', data: zst(good.memory) },
    ]);
    await refused(zipPath(), 'bad-package', 'member "disk.raw.zst" is a symbolic link');
    await writeZip(zipPath(), [
      { name: 'base.json', data: Buffer.from(JSON.stringify(good.manifest)), deflate: true },
      { name: 'disk.raw.zst', data: zst(good.disk) },
      { name: 'memory.snap.zst', data: zst(good.memory) },
    ]);
    await refused(zipPath(), 'bad-package', /^member "base.json" uses zip compression method 8/);
  });

  it('too many members', async () => {
    const members = Array.from({ length: 6 }, (_, i) => ({ name: `m${i}`, data: Buffer.from('x') }));
    await writeZip(zipPath(), members);
    await refused(zipPath(), 'bad-package', 'the zip has 6 members; a base package has at most 5');
  });

  it('hash mismatch: a byte flipped in disk.raw, manifest kept', async () => {
    await writePackage(zipPath(), { ...good, disk: flipped(good.disk, 0) });
    await refused(
      zipPath(),
      'hash-mismatch',
      /^hash mismatch: disk\.raw chunk index sha256 is [0-9a-f]{64}, base\.json says/,
    );
  });

  it('hash mismatch: a byte flipped in memory.snap (still a valid stream)', async () => {
    // The last byte of the device state body: inside the opaque tail, so the stream still parses.
    await writePackage(zipPath(), { ...good, memory: flipped(good.memory, good.memory.length - 1 - 5 - 1) });
    await refused(zipPath(), 'hash-mismatch', /^hash mismatch: memory\.snap sha256 is/);
  });

  it('hash mismatch: a manifest that claims another id, or another spec under the same id', async () => {
    const otherId = withManifest((m) => {
      m.id = 'f'.repeat(64);
    });
    await writePackage(zipPath(), { ...good, manifest: otherId });
    await refused(
      zipPath(),
      'hash-mismatch',
      `hash mismatch: the base id is ${good.manifest.id as string}, base.json says ${'f'.repeat(64)}`,
    );
    const otherSpec = withManifest((m) => {
      (m.spec as { memoryMiB: number }).memoryMiB = 64;
    });
    await writePackage(zipPath(), { ...good, manifest: otherSpec });
    await refused(zipPath(), 'hash-mismatch', /^hash mismatch: the base id is [0-9a-f]{64}, base\.json says/);
  });

  it('a manifest that is not JSON, fails the schema, or has an unknown formatVersion', async () => {
    await writeZip(zipPath(), [
      { name: 'base.json', data: Buffer.from('{ not json') },
      { name: 'disk.raw.zst', data: zst(good.disk) },
      { name: 'memory.snap.zst', data: zst(good.memory) },
    ]);
    await refused(zipPath(), 'bad-manifest', /^base\.json is not JSON/);
    const noDisk = withManifest((m) => {
      delete (m as Record<string, unknown>).disk;
    });
    await writePackage(zipPath(), { ...good, manifest: noDisk });
    await refused(zipPath(), 'bad-manifest', /^base\.json fails the schema: disk: /);
    const badSpec = withManifest((m) => {
      (m.spec as { cpu: string }).cpu = 'host';
    });
    await writePackage(zipPath(), { ...good, manifest: badSpec });
    await refused(zipPath(), 'bad-manifest', /^base\.json fails the schema: spec\.cpu: /);
    const future = withManifest((m) => {
      m.formatVersion = 2;
    });
    await writePackage(zipPath(), { ...good, manifest: future });
    await refused(
      zipPath(),
      'bad-manifest',
      'base.json formatVersion 2 is not supported (this cloudlet reads 1)',
    );
  });

  it('a disk that is not raw (qcow2 magic)', async () => {
    const qcow2 = Buffer.from(good.disk);
    qcow2.write('QFI\xfb', 0, 'latin1');
    await writePackage(zipPath(), { ...good, disk: qcow2 });
    await refused(zipPath(), 'bad-disk', 'disk.raw is not a raw disk image (looks like qcow2)');
  });

  it('oversized declared sizes: beyond the limits, or beyond maxBytes', async () => {
    const huge = withManifest((m) => {
      m.disk.bytes = 2 ** 50;
      (m.disk as Record<string, unknown>).chunkCount = 2 ** 38;
    });
    await writePackage(zipPath(), { ...good, manifest: huge });
    await refused(zipPath(), 'bad-manifest', /^base\.json fails the schema: disk\.bytes: /);
    await refused(
      goodZip,
      'too-large',
      /^the base would take \d+ bytes, above the 1048576-byte import limit$/,
      1024 * 1024,
    );
  });

  it('content larger or smaller than declared; a member larger than its content could compress to', async () => {
    const smaller = withManifest((m) => {
      m.disk.bytes -= 4096;
      (m.disk as Record<string, unknown>).chunkCount = m.disk.bytes / 4096;
    });
    await writePackage(zipPath(), { ...good, manifest: smaller });
    await refused(
      zipPath(),
      'hash-mismatch',
      `disk.raw.zst decompresses to more than the ${good.disk.length - 4096} bytes base.json declares`,
    );
    const larger = withManifest((m) => {
      m.disk.bytes += 4096;
      (m.disk as Record<string, unknown>).chunkCount = m.disk.bytes / 4096;
    });
    await writePackage(zipPath(), { ...good, manifest: larger });
    await refused(
      zipPath(),
      'hash-mismatch',
      `disk.raw.zst decompresses to ${good.disk.length} bytes, base.json declares ${good.disk.length + 4096}`,
    );
    const tiny = withManifest((m) => {
      m.disk.bytes = 512;
      (m.disk as Record<string, unknown>).chunkCount = 1;
    });
    await writePackage(zipPath(), { ...good, manifest: tiny });
    await refused(
      zipPath(),
      'bad-package',
      /^disk\.raw\.zst is \d+ bytes, more than 512 bytes can compress to$/,
    );
  });

  it('a decompression bomb is cut at the declared size, without buffering it', async () => {
    // 64 concatenated zstd frames of 64 MiB of zeros each: a few KiB that expand to 4 GiB.
    const frame = zst(Buffer.alloc(64 * 1024 * 1024));
    const bomb = Buffer.concat(Array.from({ length: 64 }, () => frame));
    const small = withManifest((m) => {
      m.disk.bytes = 1024 * 1024;
      (m.disk as Record<string, unknown>).chunkCount = 256;
    });
    await writeZip(zipPath(), [
      { name: 'base.json', data: Buffer.from(JSON.stringify(small)) },
      { name: 'disk.raw.zst', data: bomb },
      { name: 'memory.snap.zst', data: zst(good.memory) },
    ]);
    const start = performance.now();
    await refused(
      zipPath(),
      'hash-mismatch',
      'disk.raw.zst decompresses to more than the 1048576 bytes base.json declares',
    );
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('a damaged zstd stream', async () => {
    const compressed = zst(good.disk);
    await writeZip(zipPath(), [
      { name: 'base.json', data: Buffer.from(JSON.stringify(good.manifest)) },
      { name: 'disk.raw.zst', data: flipped(compressed, compressed.length >> 1) },
      { name: 'memory.snap.zst', data: zst(good.memory) },
    ]);
    // A flipped literal byte still decodes (this frame has no checksum): the content hash catches it.
    await refused(zipPath(), 'hash-mismatch', /^hash mismatch: disk\.raw chunk index sha256/);
    await writeZip(zipPath(), [
      { name: 'base.json', data: Buffer.from(JSON.stringify(good.manifest)) },
      { name: 'disk.raw.zst', data: compressed.subarray(0, compressed.length - 100) },
      { name: 'memory.snap.zst', data: zst(good.memory) },
    ]);
    await refused(zipPath(), 'bad-package', /^disk\.raw\.zst is damaged \(/);
  });

  it('after all that, the good package still imports', async () => {
    const before = target.list().length;
    const { alreadyPresent } = await target.importBase(goodZip);
    expect(alreadyPresent).toBe(false);
    expect(target.list()).toHaveLength(before + 1);
    await target.remove(good.manifest.id as string);
  });
});
