import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createQcow2Writer, Qcow2WriterError, type Qcow2WriterOptions } from '../src/index.js';
import { shuffled } from './shuffle.js';

const run = promisify(execFile);
const qemuImg = async (...args: string[]) => (await run('qemu-img', args)).stdout;

const KiB = 1024;
const MiB = 1024 * KiB;
const CLUSTER = 4 * KiB;
const BASE_SIZE = 8 * MiB; // four 2 MiB L2 tables with 4 KiB clusters

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A raw base with a recognisable pattern in every 64th cluster, so reading through it is checked too. */
async function makeBase(size = BASE_SIZE): Promise<{ path: string; bytes: Buffer }> {
  const bytes = Buffer.alloc(size);
  for (let at = 0; at < size; at += 64 * CLUSTER) bytes.fill((at / CLUSTER) % 200 || 1, at, at + CLUSTER);
  const path = join(dir, 'base.raw');
  await writeFile(path, bytes);
  return { path, bytes };
}

/** A chunk whose bytes depend on where it goes, so misplaced clusters show up in the compare. */
function chunkFor(offset: number, length: number): Buffer {
  const chunk = Buffer.alloc(length);
  for (let i = 0; i < length; i += 512) chunk.writeUInt32LE((offset + i) >>> 0, i);
  chunk[length - 1] = 0xa5;
  return chunk;
}

interface MapExtent {
  start: number;
  length: number;
  depth: number;
}

/** Writes `clusters` (guest cluster indexes) in the given order, then checks the image with qemu-img. */
async function writeAndVerify(
  clusterIndexes: readonly number[],
  options: Partial<Qcow2WriterOptions> = {},
): Promise<{ fileBytes: number }> {
  const base = await makeBase();
  const clusterSize = options.clusterSize ?? CLUSTER;
  const file = join(dir, 'synth.qcow2');
  const writer = await createQcow2Writer({
    file,
    backingFile: base.path,
    backingFormat: 'raw',
    virtualSize: BASE_SIZE,
    ...options,
  });
  const expected = Buffer.from(base.bytes);
  await Promise.all(
    clusterIndexes.map((index) => {
      const chunk = chunkFor(index * clusterSize, clusterSize);
      chunk.copy(expected, index * clusterSize);
      return writer.write(index * clusterSize, chunk);
    }),
  );
  const result = await writer.close();
  expect(result.clusters).toBe(clusterIndexes.length);
  expect((await stat(file)).size).toBe(result.fileBytes);

  const check = await run('qemu-img', ['check', '-f', 'qcow2', file]);
  expect(check.stdout).toContain('No errors were found on the image.');
  expect(check.stderr).toBe('');

  const expectedPath = join(dir, 'expected.raw');
  await writeFile(expectedPath, expected);
  await qemuImg('compare', '-f', 'qcow2', '-F', 'raw', file, expectedPath); // rejects unless identical

  const map = JSON.parse(await qemuImg('map', '--output=json', file)) as MapExtent[];
  const ownClusters = map
    .filter((extent) => extent.depth === 0)
    .flatMap((extent) =>
      Array.from({ length: extent.length / clusterSize }, (_, i) => extent.start / clusterSize + i),
    );
  expect(ownClusters).toEqual([...clusterIndexes].sort((a, b) => a - b));
  return result;
}

describe('createQcow2Writer', () => {
  it('writes out-of-order chunks into a valid qcow2 over the raw base, holding only those chunks', async () => {
    const last = BASE_SIZE / CLUSTER - 1;
    const written = shuffled([0, 1, 7, 511, 512, 513, 1000, 1535, 1536, 1600, 2000, last - 1, last], 42);
    const { fileBytes } = await writeAndVerify(written);
    // header + data + 4 L2 tables + L1 + refcount table + one refcount block
    expect(fileBytes).toBe((1 + written.length + 4 + 1 + 1 + 1) * CLUSTER);
    expect(fileBytes).toBeLessThan(BASE_SIZE / 50);

    const info = JSON.parse(await qemuImg('info', '--output=json', join(dir, 'synth.qcow2'))) as Record<
      string,
      unknown
    >;
    expect(info).toMatchObject({
      format: 'qcow2',
      'virtual-size': BASE_SIZE,
      'cluster-size': CLUSTER,
      'backing-filename': join(dir, 'base.raw'),
      'backing-filename-format': 'raw',
    });
  });

  it('stores a multi-cluster write and an empty image', async () => {
    await writeAndVerify([]);
    const base = await makeBase();
    const file = join(dir, 'multi.qcow2');
    const writer = await createQcow2Writer({
      file,
      backingFile: base.path,
      backingFormat: 'raw',
      virtualSize: BASE_SIZE,
    });
    await writer.write(2 * MiB - CLUSTER, chunkFor(0, 3 * CLUSTER)); // spans two L2 tables
    expect(await writer.close()).toMatchObject({ clusters: 3 });
    expect((await run('qemu-img', ['check', '-f', 'qcow2', file])).stdout).toContain('No errors');
  });

  it('supports 64 KiB clusters', async () => {
    await writeAndVerify(shuffled([0, 5, 31, 32, 100, 127], 7), { clusterSize: 65536 });
  });

  it('rejects misaligned, out-of-range and repeated writes with a typed error', async () => {
    const base = await makeBase();
    const writer = await createQcow2Writer({
      file: join(dir, 'bad.qcow2'),
      backingFile: base.path,
      backingFormat: 'raw',
      virtualSize: BASE_SIZE,
    });
    const codeOf = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (error: unknown) => (error instanceof Qcow2WriterError ? error.code : String(error)),
      );
    expect(await codeOf(writer.write(100, chunkFor(0, CLUSTER)))).toBe('misaligned');
    expect(await codeOf(writer.write(0, chunkFor(0, 100)))).toBe('misaligned');
    expect(await codeOf(writer.write(BASE_SIZE, chunkFor(0, CLUSTER)))).toBe('out-of-range');
    await writer.write(CLUSTER, chunkFor(CLUSTER, CLUSTER));
    expect(await codeOf(writer.write(CLUSTER, chunkFor(CLUSTER, CLUSTER)))).toBe('rewrite');
    expect(await codeOf(writer.write(0, chunkFor(0, 2 * CLUSTER)))).toBe('rewrite');
    expect(await writer.close()).toEqual({ clusters: 1, fileBytes: 6 * CLUSTER }); // rejected writes left no trace
    expect((await run('qemu-img', ['check', '-f', 'qcow2', join(dir, 'bad.qcow2')])).stdout).toContain(
      'No errors',
    );
    expect(await codeOf(writer.write(0, chunkFor(0, CLUSTER)))).toBe('closed');
    await expect(
      createQcow2Writer({
        file: join(dir, 'x'),
        backingFile: base.path,
        backingFormat: 'raw',
        virtualSize: 1000,
      }),
    ).rejects.toBeInstanceOf(Qcow2WriterError);
  });

  it('round-trips random chunk sets written concurrently in random order', async () => {
    const clusters = BASE_SIZE / CLUSTER;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: clusters - 1 }), { maxLength: 300 }),
        async (indexes) => {
          await writeAndVerify(indexes);
        },
      ),
      { numRuns: 10 },
    );
  }, 60_000);
});
