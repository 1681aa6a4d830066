// Reading back what the qcow2 writer stored, progress counters, and a full disk (fake and real tmpfs).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createQcow2Writer, type Qcow2File, type Qcow2Writer, Qcow2WriterError } from '../src/index.js';

const CLUSTER = 4096;
const SIZE = 4 * 1024 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qcow2-readback-'));
  await writeFile(join(dir, 'base.raw'), Buffer.alloc(SIZE));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const chunk = (fill: number, clusters = 1) => Buffer.alloc(clusters * CLUSTER, fill);
const writerAt = (file: string, deps = {}, virtualSize = SIZE) =>
  createQcow2Writer({ file, backingFile: join(dir, 'base.raw'), backingFormat: 'raw', virtualSize }, deps);

/** A real file whose writes can be held back until `release()`, to catch reads racing writes. */
async function gatedFile(path: string) {
  const real = await open(path, 'w+');
  const gates: (() => void)[] = [];
  const file: Qcow2File = {
    write: async (data, offset, length, position) => {
      await new Promise<void>((resolve) => gates.push(resolve));
      return real.write(data, offset, length, position);
    },
    read: (into, offset, length, position) => real.read(into, offset, length, position),
    sync: () => real.sync(),
    close: () => real.close(),
  };
  const release = () => {
    for (const go of gates.splice(0)) go();
  };
  return { file, release };
}

describe('qcow2 writer read-back', () => {
  it('returns what was written, whole clusters and runs, and undefined for unwritten clusters', async () => {
    const writer = await writerAt(join(dir, 'a.qcow2'));
    await writer.write(10 * CLUSTER, chunk(1));
    await writer.write(3 * CLUSTER, chunk(2, 3)); // one multi-cluster write: host-contiguous
    await writer.write(11 * CLUSTER, chunk(3));
    expect(await writer.read(10 * CLUSTER, CLUSTER)).toEqual(new Uint8Array(chunk(1)));
    expect(await writer.read(4 * CLUSTER, 2 * CLUSTER)).toEqual(new Uint8Array(chunk(2, 2)));
    const across = await writer.read(10 * CLUSTER, 2 * CLUSTER); // two writes, not adjacent on the host
    expect(across).toEqual(new Uint8Array(Buffer.concat([chunk(1), chunk(3)])));
    expect(await writer.read(9 * CLUSTER, 2 * CLUSTER)).toBeUndefined();
    expect(await writer.read(0, CLUSTER)).toBeUndefined();
    await expect(writer.read(100, CLUSTER)).rejects.toMatchObject({ code: 'misaligned' });
    await expect(writer.read(SIZE, CLUSTER)).rejects.toMatchObject({ code: 'out-of-range' });
    expect(writer.bytesWritten).toBe(5 * CLUSTER);
    expect(writer.clustersWritten).toBe(5);
    await writer.close();
    await expect(writer.read(10 * CLUSTER, CLUSTER)).rejects.toMatchObject({ code: 'closed' });
    execFileSync('qemu-img', ['check', '-q', join(dir, 'a.qcow2')]); // reading did not disturb the image
  });

  it('reads a short last cluster at a virtual size that is not cluster-aligned', async () => {
    const writer = await writerAt(join(dir, 'b.qcow2'), {}, SIZE - 512);
    const tail = Buffer.alloc(CLUSTER - 512, 7);
    await writer.write(SIZE - CLUSTER, tail);
    expect(await writer.read(SIZE - CLUSTER, CLUSTER - 512)).toEqual(new Uint8Array(tail));
    await writer.close();
  });

  it('waits for a write still in flight; progress counts completed writes only', async () => {
    const gated = await gatedFile(join(dir, 'c.qcow2'));
    const writer = await writerAt(join(dir, 'c.qcow2'), { open: async () => gated.file });
    const written = writer.write(5 * CLUSTER, chunk(9));
    let readDone = false;
    const read = writer.read(5 * CLUSTER, CLUSTER).then((bytes) => {
      readDone = true;
      return bytes;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(readDone).toBe(false);
    expect(writer.bytesWritten).toBe(0);
    gated.release();
    await written;
    expect(await read).toEqual(new Uint8Array(chunk(9)));
    expect(writer.bytesWritten).toBe(CLUSTER);
    const closing = writer.close();
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      gated.release(); // the metadata writes go through the gate too
    }
    await closing;
  });
});

describe('qcow2 writer on a full disk', () => {
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

  it('rejects the write with disk-full naming the file; close removes the partial file', async () => {
    const path = join(dir, 'full.qcow2');
    const real = await open(path, 'w+');
    let room = 2 * CLUSTER;
    const file: Qcow2File = {
      write: async (data, offset, length, position) => {
        if (room < length) throw enospc();
        room -= length;
        return real.write(data, offset, length, position);
      },
      read: (into, offset, length, position) => real.read(into, offset, length, position),
      sync: () => real.sync(),
      close: () => real.close(),
    };
    const writer: Qcow2Writer = await writerAt(path, { open: async () => file });
    await writer.write(0, chunk(1));
    await writer.write(CLUSTER, chunk(2));
    const error = await writer.write(2 * CLUSTER, chunk(3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Qcow2WriterError);
    expect(error).toMatchObject({ code: 'disk-full' });
    expect((error as Error).message).toBe(
      `${path}: the disk is full (ENOSPC) while writing 4096 bytes at guest offset 8192`,
    );
    await expect(writer.write(3 * CLUSTER, chunk(4))).rejects.toBe(error); // broken from then on
    await expect(writer.read(0, CLUSTER)).rejects.toBe(error);
    expect(existsSync(path)).toBe(true);
    await expect(writer.close()).rejects.toBe(error);
    expect(existsSync(path)).toBe(false);
  });

  it('reports other write failures as io', async () => {
    const path = join(dir, 'eio.qcow2');
    const file: Qcow2File = {
      write: async () => {
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      },
      read: async () => ({ bytesRead: 0 }),
      sync: async () => {},
      close: async () => {},
    };
    const removed: string[] = [];
    const writer = await writerAt(path, {
      open: async () => file,
      remove: async (p: string) => void removed.push(p),
    });
    await expect(writer.write(0, chunk(1))).rejects.toMatchObject({
      code: 'io',
      message: `${path}: writing 4096 bytes at guest offset 0 failed: EIO: i/o error, write`,
    });
    await expect(writer.close()).rejects.toMatchObject({ code: 'io' });
    expect(removed).toEqual([path]);
  });

  it('on a real 1 MiB tmpfs: disk-full, and close leaves no file behind', async () => {
    const mnt = join(dir, 'mnt');
    execFileSync('mkdir', [mnt]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1M', 'tmpfs', mnt]);
    try {
      const path = join(mnt, 'synth.qcow2');
      const writer = await writerAt(path);
      let failure: unknown;
      for (let at = 0; at < 2 * 1024 * 1024 && failure === undefined; at += 64 * 1024) {
        failure = await writer.write(at, chunk(5, 16)).catch((e: unknown) => e);
      }
      expect(failure).toMatchObject({ code: 'disk-full' });
      expect((failure as Error).message).toContain(`${path}: the disk is full (ENOSPC)`);
      await expect(writer.close()).rejects.toBe(failure);
      expect(existsSync(path)).toBe(false);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
