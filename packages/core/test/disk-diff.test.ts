// Uses qemu-img/qemu-io (Debian qemu-utils) to make a real qcow2 overlay with 4 KiB clusters.
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { indexDiskImage } from '@cloudlet/delta';
import { createDiskOverlay } from '@cloudlet/qemu-driver';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changedDiskChunks } from '../src/index.js';

const run = promisify(execFile);
const K4 = 4096;

describe('changedDiskChunks', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'core-disk-diff-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads only the overlay’s own clusters and keeps the ones that differ from the base', async () => {
    const base = join(dir, 'base.raw');
    const file = await open(base, 'w');
    await file.truncate(1024 * 1024);
    for (const chunk of [3, 5, 7]) await file.write(Buffer.alloc(K4, 0x40 + chunk), 0, K4, chunk * K4);
    await file.close();
    const overlay = join(dir, 'overlay.qcow2');
    await createDiskOverlay({ file: overlay, backingFile: base, backingFormat: 'raw', clusterSize: K4 });
    const io = (command: string) => run('qemu-io', ['-f', 'qcow2', '-c', command, overlay]);
    await io(`write -P 0x99 ${3 * K4} 4k`); // changed
    await io(`write -P 0x45 ${5 * K4} 4k`); // rewritten with the same bytes: unchanged
    await io(`write -z ${7 * K4} 4k`); // zeroed where the base had data
    await io(`write -P 0x11 ${9 * K4} 8k`); // new data where the base was empty (chunks 9 and 10)
    await io(`write -z ${20 * K4} 4k`); // zeroed where the base was zero already: unchanged

    const changed = [];
    for await (const chunk of changedDiskChunks(overlay, await indexDiskImage(base))) {
      changed.push([chunk.index, chunk.data === null ? 'zero' : chunk.data[0]]);
    }
    expect(changed).toEqual([
      [3, 0x99],
      [7, 'zero'],
      [9, 0x11],
      [10, 0x11],
    ]);
  });
});
