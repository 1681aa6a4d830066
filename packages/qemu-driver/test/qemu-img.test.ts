import { describe, expect, it } from 'vitest';
import { convertDisk, createDiskOverlay, mapDisk, QemuImgError } from '../src/index.js';

function recorder(stdout = '') {
  const calls: (readonly string[])[] = [];
  const run = async (args: readonly string[]) => {
    calls.push(args);
    return stdout;
  };
  return { calls, run };
}

describe('qemu-img helpers', () => {
  it('creates a qcow2 overlay over a base image', async () => {
    const { calls, run } = recorder();
    await createDiskOverlay({ file: '/w/o.qcow2', backingFile: '/b/base.raw', backingFormat: 'raw' }, run);
    await createDiskOverlay(
      { file: '/w/p.qcow2', backingFile: '/w/o.qcow2', backingFormat: 'qcow2', clusterSize: 4096 },
      run,
    );
    expect(calls).toEqual([
      ['create', '-q', '-f', 'qcow2', '-b', '/b/base.raw', '-F', 'raw', '/w/o.qcow2'],
      [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-o',
        'cluster_size=4096',
        '-b',
        '/w/o.qcow2',
        '-F',
        'qcow2',
        '/w/p.qcow2',
      ],
    ]);
  });

  it('converts a disk image', async () => {
    const { calls, run } = recorder();
    await convertDisk({ source: '/w/o.qcow2', target: '/w/r.raw', targetFormat: 'raw' }, run);
    await convertDisk(
      { source: '/w/r.raw', sourceFormat: 'raw', target: '/w/q.qcow2', targetFormat: 'qcow2' },
      run,
    );
    expect(calls).toEqual([
      ['convert', '-O', 'raw', '/w/o.qcow2', '/w/r.raw'],
      ['convert', '-f', 'raw', '-O', 'qcow2', '/w/r.raw', '/w/q.qcow2'],
    ]);
  });

  it('parses the extent map', async () => {
    const json =
      '[{ "start": 0, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true, "offset": 327680}]';
    const { calls, run } = recorder(json);
    await mapDisk('/w/o.qcow2', { forceShare: true }, run);
    expect(await mapDisk('/w/o.qcow2', {}, run)).toEqual([
      { start: 0, length: 65536, depth: 0, present: true, zero: false, data: true, offset: 327680 },
    ]);
    expect(calls).toEqual([
      ['map', '-U', '--output=json', '/w/o.qcow2'],
      ['map', '--output=json', '/w/o.qcow2'],
    ]);
  });

  it("explains failures with qemu-img's message", () => {
    const error = new QemuImgError(
      ['info', '/nope'],
      "qemu-img: Could not open '/nope': No such file or directory\n",
    );
    expect(error.message).toBe(
      "qemu-img info /nope failed: Could not open '/nope': No such file or directory",
    );
  });
});
