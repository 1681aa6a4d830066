// Read/write semantics of one cloudletfs image, with a fake source (no FUSE).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHUNK_SIZE, type ChunkedImage } from '../src/chunked-image.js';
import { createImageFile } from '../src/image-file.js';
import { createPrivateStore } from '../src/private-store.js';

const SIZE = 10 * CHUNK_SIZE + 100; // a short last chunk

/** Chunk i is filled with byte i; each chunk is released only when the test says so. */
function gatedSource() {
  const calls: number[] = [];
  const gates = new Map<number, () => void>();
  const image: ChunkedImage = {
    size: SIZE,
    readChunk(index) {
      calls.push(index);
      return new Promise((resolve) => {
        gates.set(index, () => resolve(Buffer.alloc(Math.min(CHUNK_SIZE, SIZE - index * CHUNK_SIZE), index)));
      });
    },
  };
  return { image, calls, release: (i: number) => gates.get(i)?.() };
}

describe('image file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloudletfs-image-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a read waits until its chunk arrives; concurrent readers share one fetch', async () => {
    const source = gatedSource();
    const file = createImageFile(source.image, createPrivateStore(join(dir, 'w'), SIZE));
    let done = 0;
    const reads = [file.read(3 * CHUNK_SIZE + 10, 20), file.read(3 * CHUNK_SIZE, 4)].map((p) =>
      p.then((b) => {
        done++;
        return b;
      }),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(0);
    expect(source.calls).toEqual([3]);
    source.release(3);
    const [a, b] = await Promise.all(reads);
    expect(a).toEqual(Buffer.alloc(20, 3));
    expect(b).toEqual(Buffer.alloc(4, 3));
    expect(file.stats().chunksFetched).toBe(1);
  });

  it('reads across chunks and at the end; out-of-range reads are empty', async () => {
    const source = gatedSource();
    const file = createImageFile(source.image, createPrivateStore(join(dir, 'w'), SIZE));
    const across = file.read(CHUNK_SIZE - 2, 4);
    source.release(0);
    source.release(1);
    expect(await across).toEqual(Buffer.from([0, 0, 1, 1]));
    const tail = file.read(SIZE - 50, 200);
    source.release(10);
    expect(await tail).toEqual(Buffer.alloc(50, 10));
    expect(await file.read(SIZE, 10)).toEqual(Buffer.alloc(0));
  });

  it('writes land in the private store and read back; partial writes keep the rest of the chunk', async () => {
    const source = gatedSource();
    const file = createImageFile(source.image, createPrivateStore(join(dir, 'w'), SIZE));
    await file.write(2 * CHUNK_SIZE, Buffer.alloc(CHUNK_SIZE, 0xee)); // whole chunk: no fetch
    expect(source.calls).toEqual([]);
    const partial = file.write(5 * CHUNK_SIZE + 1, Buffer.from([0xab]));
    await new Promise((r) => setTimeout(r, 5)); // the write asks for chunk 5 on a later tick
    source.release(5);
    await partial;
    expect(await file.read(2 * CHUNK_SIZE, 2)).toEqual(Buffer.from([0xee, 0xee]));
    expect(await file.read(5 * CHUNK_SIZE, 3)).toEqual(Buffer.from([5, 0xab, 5]));
    expect(source.calls).toEqual([5]);
    await expect(file.write(SIZE - 1, Buffer.alloc(2))).rejects.toThrow(/beyond the/);
  });

  it('reports the first touch of each chunk in order', async () => {
    const order: number[] = [];
    const source = gatedSource();
    const file = createImageFile(source.image, createPrivateStore(join(dir, 'w'), SIZE), (c) =>
      order.push(c),
    );
    await file.write(7 * CHUNK_SIZE, Buffer.alloc(CHUNK_SIZE));
    const r = file.read(CHUNK_SIZE, 2 * CHUNK_SIZE);
    source.release(1);
    source.release(2);
    await r;
    await file.read(7 * CHUNK_SIZE, 1);
    expect(order).toEqual([7, 1, 2]);
  });
});
