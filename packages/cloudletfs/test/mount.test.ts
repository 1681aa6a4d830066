// cloudletfs through a real FUSE mount (needs /dev/fuse and root, as CI has): blocking reads, concurrent
// readers, writes, out-of-range access, stale mounts, and nothing left mounted.
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CHUNK_SIZE,
  type ChunkedImage,
  cloudletMountsUnder,
  mountCloudletFs,
  removeStaleMounts,
} from '../src/index.js';

const SIZE = 64 * CHUNK_SIZE;

function delayedImage(delayMs: number): ChunkedImage & { calls: number[] } {
  const calls: number[] = [];
  return {
    size: SIZE,
    calls,
    readChunk: async (index) => {
      calls.push(index);
      await new Promise((r) => setTimeout(r, delayMs));
      return Buffer.alloc(CHUNK_SIZE, index);
    },
  };
}

describe('cloudletfs mount', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloudletfs-mount-'));
  });
  afterEach(async () => {
    expect(await cloudletMountsUnder(dir)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('serves images whose reads wait for their chunks, and takes writes', async () => {
    const disk = delayedImage(200);
    const seen: number[] = [];
    const fs = await mountCloudletFs({
      mountpoint: join(dir, 'mnt'),
      images: { disk },
      storeDir: join(dir, 'store'),
      onAccess: (a) => seen.push(a.chunk),
    });
    try {
      expect(fs.paths.disk).toBe(join(dir, 'mnt', 'disk', 'image'));
      expect((await stat(fs.paths.disk)).size).toBe(SIZE);
      const file = await open(fs.paths.disk, 'r+');
      try {
        const t = performance.now();
        const buffers = [Buffer.alloc(16), Buffer.alloc(16)];
        // two readers of chunk 9 at once: one fetch, both wait for it
        await Promise.all(buffers.map((b) => file.read(b, 0, 16, 9 * CHUNK_SIZE + 100)));
        expect(performance.now() - t).toBeGreaterThanOrEqual(150);
        expect(buffers[0]).toEqual(Buffer.alloc(16, 9));
        expect(buffers[1]).toEqual(Buffer.alloc(16, 9));
        await file.write(Buffer.from('hello'), 0, 5, 20 * CHUNK_SIZE + 7);
        await file.sync();
        const back = Buffer.alloc(9);
        await file.read(back, 0, 9, 20 * CHUNK_SIZE + 5);
        expect(back).toEqual(Buffer.concat([Buffer.alloc(2, 20), Buffer.from('hello'), Buffer.alloc(2, 20)]));
        const beyond = await file.read(Buffer.alloc(8), 0, 8, SIZE + 100);
        expect(beyond.bytesRead).toBe(0);
      } finally {
        await file.close();
      }
      const stats = fs.stats().disk;
      expect(stats?.chunksStored).toBe(1);
      expect(disk.calls.filter((c) => c === 9)).toHaveLength(1);
      expect(
        fs
          .accessLog()
          .map((a) => a.chunk)
          .slice(0, 2),
      ).toEqual([9, 20]);
    } finally {
      await fs.unmount();
    }
    await expect(readFile(join(dir, 'store', 'disk.writes'))).rejects.toThrow(/ENOENT/);
  });

  it('a failing source gives the reader EIO and reports the error', async () => {
    const errors: string[] = [];
    const broken: ChunkedImage = {
      size: SIZE,
      readChunk: async () => Promise.reject(new Error('segment 3 fetch failed')),
    };
    const fs = await mountCloudletFs({
      mountpoint: join(dir, 'mnt'),
      images: { disk: broken },
      storeDir: join(dir, 'store'),
      onError: (e) => errors.push((e as Error).message),
    });
    try {
      await expect(readFile(fs.paths.disk as string)).rejects.toThrow(/EIO|input\/output/i);
      expect(errors[0]).toBe('segment 3 fetch failed');
    } finally {
      await fs.unmount();
    }
  });

  it('finds and removes a mount whose process died, and leaves live ones alone', async () => {
    const mnt = join(dir, 'stale');
    // A child process mounts, then is SIGKILLed: its mount stays behind, disconnected.
    const script = `
      import { mountCloudletFs } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).pathname)};
      await mountCloudletFs({ mountpoint: ${JSON.stringify(mnt)}, storeDir: ${JSON.stringify(join(dir, 's2'))},
        images: { disk: { size: 4096, readChunk: async () => Buffer.alloc(4096) } } });
      console.log('mounted');
      setInterval(() => {}, 1000);`;
    await writeFile(join(dir, 'mounter.mts'), script);
    // node itself (not the tsx wrapper, which runs node as a child): SIGKILL must hit the FUSE daemon.
    const child = execFile(process.execPath, ['--import', 'tsx', join(dir, 'mounter.mts')]);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => d.toString().includes('mounted') && resolve());
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    const live = await mountCloudletFs({
      mountpoint: join(dir, 'live'),
      images: { disk: delayedImage(0) },
      storeDir: join(dir, 'store'),
    });
    try {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(await cloudletMountsUnder(dir)).toEqual(expect.arrayContaining([mnt, join(dir, 'live')]));
      expect(await removeStaleMounts(dir)).toEqual([mnt]);
      expect(await cloudletMountsUnder(dir)).toEqual([join(dir, 'live')]);
    } finally {
      await live.unmount();
    }
  });
});
