import { randomBytes } from 'node:crypto';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { type IndexProgress, indexDiskImage, ZERO_CHUNK_HASH } from '../src/index.js';
import { patternChunk, sha256 } from './helpers.js';

/** Single-threaded, obvious hashing of every 4 KiB chunk, the last one zero-padded. */
function naiveHashes(image: Uint8Array): Uint8Array {
  const count = Math.ceil(image.length / 4096);
  const out = new Uint8Array(count * 32);
  for (let i = 0; i < count; i++) {
    const chunk = new Uint8Array(4096);
    chunk.set(image.subarray(i * 4096, (i + 1) * 4096));
    out.set(sha256(chunk), i * 32);
  }
  return out;
}

/** Random, repeated and zero chunks in runs, plus a tail of `tail` bytes. */
function realisticImage(chunks: number, tail: number): Uint8Array {
  const image = new Uint8Array(chunks * 4096 + tail);
  for (let i = 0; i < chunks; i++) {
    const kind = i % 11;
    if (kind < 4) image.set(randomBytes(4096), i * 4096);
    else if (kind < 7) image.set(patternChunk(i % 3), i * 4096);
    // else: zero
  }
  image.fill(7, chunks * 4096);
  return image;
}

async function imageFile(bytes: Uint8Array): Promise<string> {
  const file = join(testTempDir('cloudlet-delta-'), 'disk.raw');
  await writeFile(file, bytes);
  return file;
}

describe('indexDiskImage', () => {
  it('equals naive hashing, with zero runs, repeats and a short tail, for 1, 2 and 3 workers', async () => {
    const image = realisticImage(203, 1234);
    const file = await imageFile(image);
    const expected = naiveHashes(image);
    for (const workers of [1, 2, 3]) {
      const index = await indexDiskImage(file, { workers, blockBytes: 16 * 4096 });
      expect(index.kind).toBe('disk');
      expect(index.count).toBe(204);
      expect(index.byteLength).toBe(image.length);
      expect(new Uint8Array(index.hashes)).toEqual(expected);
    }
  });

  it('uses default options on a file smaller than one block', async () => {
    const image = realisticImage(30, 0);
    const index = await indexDiskImage(await imageFile(image));
    expect(index.count).toBe(30);
    expect(new Uint8Array(index.hashes)).toEqual(naiveHashes(image));
  });

  it('indexes an empty image and a sparse one', async () => {
    const empty = await indexDiskImage(await imageFile(new Uint8Array(0)));
    expect(empty.count).toBe(0);
    expect(empty.byteLength).toBe(0);

    const sparse = join(testTempDir('cloudlet-delta-'), 'sparse.raw');
    await writeFile(sparse, patternChunk(1));
    await truncate(sparse, 64 * 4096 * 16);
    const index = await indexDiskImage(sparse, { blockBytes: 64 * 4096 });
    expect(index.count).toBe(1024);
    expect(index.hashAt(0)).toEqual(sha256(patternChunk(1)));
    for (let i = 1; i < index.count; i++) expect(index.hashAt(i)).toEqual(ZERO_CHUNK_HASH);
  });

  it('reports progress up to the total', async () => {
    const image = realisticImage(100, 10);
    const seen: IndexProgress[] = [];
    await indexDiskImage(await imageFile(image), {
      workers: 2,
      blockBytes: 8 * 4096,
      onProgress: (p) => seen.push(p),
    });
    expect(seen.length).toBe(Math.ceil(image.length / (8 * 4096)));
    expect(seen.every((p) => p.totalBytes === image.length)).toBe(true);
    expect(seen.map((p) => p.bytesDone)).toEqual([...seen.map((p) => p.bytesDone)].sort((a, b) => a - b));
    expect(seen.at(-1)?.bytesDone).toBe(image.length);
  });

  it('stops when aborted', async () => {
    const file = await imageFile(realisticImage(2000, 0));
    const controller = new AbortController();
    const run = indexDiskImage(file, {
      blockBytes: 4096,
      onProgress: () => controller.abort(new Error('user gave up')),
      signal: controller.signal,
    });
    await expect(run).rejects.toThrow('user gave up');
    await expect(indexDiskImage(file, { signal: AbortSignal.abort() })).rejects.toThrow();
  });

  it('rejects bad options and missing files', async () => {
    const file = await imageFile(new Uint8Array(4096));
    await expect(indexDiskImage(file, { blockBytes: 1000 })).rejects.toThrow(RangeError);
    await expect(indexDiskImage(file, { workers: 0 })).rejects.toThrow(RangeError);
    await expect(indexDiskImage(join(testTempDir('cloudlet-delta-'), 'nope.raw'))).rejects.toThrow(/ENOENT/);
  });

  it('leaves the image untouched', async () => {
    const image = realisticImage(20, 5);
    const file = await imageFile(image);
    await indexDiskImage(file, { workers: 2, blockBytes: 4096 });
    expect(new Uint8Array(await readFile(file))).toEqual(image);
  });
});
