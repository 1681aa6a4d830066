import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  createOverlayWriter,
  describeOverlay,
  openOverlay,
  PAGE_SIZE,
  type SegmentCodec,
  zstdCodec,
} from '../src/index.js';
import { DISK_CHUNKS, manifestFields } from './fixtures.js';
import { readZip } from './zip-tools.js';

/** A page that compresses about 2:1, like typical guest memory. */
function halfRandomPage(): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  page.set(randomBytes(PAGE_SIZE / 2));
  return page;
}

const dir = testTempDir('overlay-format-');
const leftovers = () => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

describe('createOverlayWriter', () => {
  it('cuts segments of about the target compressed size, each decompressible on its own', async () => {
    const file = join(dir, 'sized.zip');
    const target = 64 * 1024;
    const writer = createOverlayWriter({ file, targetSegmentBytes: target, workers: 2 });
    for (let i = 0; i < 3000; i++)
      await writer.add({ space: 'memory', index: i, encoding: { kind: 'raw', data: halfRandomPage() } });
    for (let i = 0; i < 2000; i++)
      await writer.add({ space: 'disk', index: i, encoding: { kind: 'raw', data: halfRandomPage() } });
    const { manifest } = await writer.finish(manifestFields());
    const sizes = manifest.segments.map((s) => s.compressedBytes);
    // The first segments are cut before any ratio is known; after that they are close to the target.
    const settled = manifest.segments.slice(4).filter((s, i, all) => all[i + 1]?.space === s.space);
    expect(settled.length).toBeGreaterThan(20);
    for (const s of settled) expect(s.compressedBytes / target).toBeGreaterThan(0.8);
    for (const s of settled) expect(s.compressedBytes / target).toBeLessThan(1.25);
    expect(Math.max(...sizes)).toBeLessThan(1.5 * target);
    expect(manifest.segments.findIndex((s) => s.space === 'disk')).toBe(
      manifest.segments.filter((s) => s.space === 'memory').length,
    );
    // Each stored entry alone, straight from the zip, decompresses to the declared size.
    const raw = new Map((await readZip(file)).map((e) => [e.name, e.data]));
    const codec = zstdCodec();
    for (const s of manifest.segments)
      expect((await codec.decompress(raw.get(s.entry) as Buffer, s.uncompressedBytes)).length).toBe(
        s.uncompressedBytes,
      );
    const overlay = await openOverlay(file);
    const last = manifest.segments.length - 1;
    expect((await overlay.readSegment(last)).at(-1)).toMatchObject({ space: 'disk', index: 1999 });
    expect(overlay.segmentOf('memory', 2999)).toBe(
      manifest.segments.filter((s) => s.space === 'memory').length - 1,
    );
    await overlay.close();
  }, 60_000);

  it('counts records per kind and space exactly', async () => {
    const file = join(dir, 'stats.zip');
    const writer = createOverlayWriter({ file, workers: 0 });
    await writer.add({ space: 'memory', index: 0, encoding: { kind: 'zero' } });
    await writer.add({ space: 'memory', index: 1, encoding: { kind: 'base-disk', index: 5 } });
    await writer.add({ space: 'disk', index: 3, encoding: { kind: 'self', space: 'memory', index: 1 } });
    await writer.add({ space: 'disk', index: 4, encoding: { kind: 'xor', delta: new Uint8Array(10) } });
    const { manifest } = await writer.finish(manifestFields());
    expect(manifest.statistics.memory.zero).toEqual({ count: 1, bytes: 2 });
    expect(manifest.statistics.memory['base-disk']).toEqual({ count: 1, bytes: 3 });
    expect(manifest.statistics.disk.self).toEqual({ count: 1, bytes: 3 });
    expect(manifest.statistics.disk.xor).toEqual({ count: 1, bytes: 13 });
    expect(manifest.statistics.disk.raw).toEqual({ count: 0, bytes: 0 });
  });

  const refuses = async (
    run: (w: ReturnType<typeof createOverlayWriter>) => Promise<unknown>,
    message: RegExp,
    options: { codec?: SegmentCodec } = {},
  ) => {
    const file = join(dir, `refused-${Math.random()}.zip`);
    const writer = createOverlayWriter({ file, workers: 0, ...options });
    await expect(run(writer)).rejects.toMatchObject({ message: expect.stringMatching(message) });
    expect(existsSync(file)).toBe(false);
    expect(leftovers()).toEqual([]);
    await expect(writer.add({ space: 'disk', index: 0, encoding: { kind: 'zero' } })).rejects.toBeDefined();
  };

  it('refuses memory records after disk records, and removes the temp file', async () => {
    await refuses(async (w) => {
      await w.add({ space: 'disk', index: 0, encoding: { kind: 'zero' } });
      await w.add({ space: 'memory', index: 0, encoding: { kind: 'zero' } });
    }, /memory records come first/);
  });

  it('refuses malformed records, duplicates, out-of-range indexes and bad blob names', async () => {
    await refuses(
      (w) => w.add({ space: 'disk', index: 0, encoding: { kind: 'raw', data: new Uint8Array(10) } }),
      /raw data of 10 bytes/,
    );
    await refuses((w) => w.add({ space: 'disk', index: -1, encoding: { kind: 'zero' } }), /index -1/);
    await refuses(async (w) => {
      await w.add({ space: 'disk', index: 3, encoding: { kind: 'zero' } });
      await w.add({ space: 'disk', index: 3, encoding: { kind: 'zero' } });
      await w.finish(manifestFields());
    }, /disk chunk 3 was added twice/);
    await refuses(async (w) => {
      await w.add({ space: 'disk', index: DISK_CHUNKS, encoding: { kind: 'zero' } });
      await w.finish(manifestFields());
    }, /disk index 8192 is beyond the 8192 chunks/);
    await refuses((w) => w.addBlob('../state', new Uint8Array(1)), /blob name/);
    await refuses(async (w) => {
      await w.add({ space: 'memory', index: 1, encoding: { kind: 'self', space: 'disk', index: 5 } });
      await w.add({ space: 'disk', index: 5, encoding: { kind: 'zero' } });
      await w.finish(manifestFields());
    }, /self reference to disk chunk 5 comes before that chunk/);
    await refuses(async (w) => {
      await w.add({ space: 'disk', index: 5, encoding: { kind: 'self', space: 'memory', index: 9 } });
      await w.finish(manifestFields());
    }, /self reference to memory chunk 9 names a chunk not in the overlay/);
  });

  it('removes the temp file when the codec fails', async () => {
    const failing: SegmentCodec = {
      name: 'zstd',
      defaultLevel: 3,
      compress: async () => {
        throw new Error('disk on fire');
      },
      decompress: async () => new Uint8Array(0),
    };
    await refuses(
      async (w) => {
        for (let i = 0; i < 1000; i++)
          await w.add({ space: 'memory', index: i, encoding: { kind: 'raw', data: randomBytes(PAGE_SIZE) } });
        await w.finish(manifestFields());
      },
      /disk on fire/,
      { codec: failing },
    );
  });

  it('abort() removes the temp file', async () => {
    const file = join(dir, 'aborted.zip');
    const writer = createOverlayWriter({ file, workers: 2 });
    await writer.add({ space: 'memory', index: 0, encoding: { kind: 'zero' } });
    await writer.abort();
    expect(existsSync(file)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('leaves a Buffer blob intact when compressing it on a worker', async () => {
    const writer = createOverlayWriter({ file: join(dir, 'blob-buffer.zip'), workers: 2 });
    const blob = Buffer.from('device state bytes');
    await writer.addBlob('device-state', blob);
    await writer.finish(manifestFields());
    expect(blob.toString()).toBe('device state bytes');
  });
});

describe('describeOverlay', () => {
  it('reports ids, sizes, per-kind counts and the segment table', async () => {
    const file = join(dir, 'described.zip');
    const writer = createOverlayWriter({ file, workers: 0 });
    await writer.add({
      space: 'memory',
      index: 2,
      encoding: { kind: 'raw', data: new Uint8Array(PAGE_SIZE) },
    });
    await writer.add({ space: 'disk', index: 9, encoding: { kind: 'base-memory', index: 2 } });
    await writer.addBlob('prologue', new Uint8Array(100));
    const { manifest } = await writer.finish(manifestFields());
    const info = describeOverlay(manifest);
    expect(info).toMatchObject({
      formatVersion: 5,
      baseId: 'ab'.repeat(32),
      codec: 'zstd level 19',
      vm: { memoryPages: 4096, memoryBytes: 4096 * PAGE_SIZE },
      uncompressedBytes: 4100 + 3,
      blobs: [{ name: 'prologue', uncompressedBytes: 100 }],
    });
    expect(info.spaces.memory.chunks).toBe(1);
    expect(info.spaces.disk.kinds['base-memory']).toEqual({ count: 1, bytes: 3 });
    expect(info.segments.map((s) => [s.space, s.records, s.firstIndex, s.lastIndex])).toEqual([
      ['memory', 1, 2, 2],
      ['disk', 1, 9, 9],
    ]);
  });
});

describe('createOverlayWriter options', () => {
  it('refuses nonsense numbers up front', () => {
    const file = join(dir, 'never.zip');
    expect(() => createOverlayWriter({ file, workers: -1 })).toThrow(RangeError);
    expect(() => createOverlayWriter({ file, targetSegmentBytes: 10 })).toThrow(RangeError);
    expect(() => createOverlayWriter({ file, level: 1.5 })).toThrow(RangeError);
    expect(existsSync(file)).toBe(false);
  });
});
