// Overlay creation on the tiny VM: apply(create(base, custom)) must give back the custom VM's disk byte for
// byte and its memory page for page; the rebuilt VM must run with its state; an unchanged VM's overlay is tiny.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BaseInfo, type BaseRegistry, openBaseRegistry } from '@cloudlet/base-registry';
import { hashChunk } from '@cloudlet/delta';
import { collectMigrationStream, pageIndexer } from '@cloudlet/memory-snapshot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeAndFetch } from '../../../examples/synthesize.js';
import { applyOverlay, createOverlay, runGuestScript } from '../src/index.js';
import { createTinyBase } from './tiny-base.js';

const run = promisify(execFile);

const CUSTOMIZE = [
  'echo custom-disk-file > /mnt/custom.txt',
  'cp /mnt/hello.txt /mnt/hello-copy.txt', // a copy of a file the base disk already has
  'dd if=/dev/urandom of=/tmp/heap.bin bs=1024 count=2048 2>/dev/null', // 2 MiB of random state in RAM
  'echo page-custom > /mnt/www/state.html',
  'httpd -p 80 -h /mnt/www',
  'sync',
].join('\n');

/** flat page index → sha256 (hex) of every non-zero page of a memory snapshot file. */
async function pageHashes(file: string): Promise<Map<number, string>> {
  const stream = await collectMigrationStream(createReadStream(file));
  const indexer = pageIndexer(stream.prologue.blocks);
  return new Map(
    stream.pages.map((p) => [
      indexer.indexOf(p.block, p.offset),
      Buffer.from(hashChunk(p.data ?? new Uint8Array(4096))).toString('hex'),
    ]),
  );
}

describe('createOverlay / applyOverlay on the tiny VM', () => {
  let work: string;
  let registry: BaseRegistry;
  let base: BaseInfo;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'core-overlay-'));
    registry = await openBaseRegistry({ home: join(work, 'home') });
    base = await createTinyBase(registry);
  });
  afterAll(async () => {
    registry?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('apply(create(base, custom)) is the custom disk byte for byte and its memory page for page', async () => {
    let workDir = '';
    const result = await createOverlay({
      registry,
      base: base.id,
      output: join(work, 'custom.zip'),
      qemuArgs: ['-redir', 'tcp:0::80'],
      prepare: (vm) => runGuestScript(vm, CUSTOMIZE),
      memorySnapshotCopy: join(work, 'custom.snap'),
      keepWorkDir: (dir) => {
        workDir = dir;
      },
    });
    const { statistics } = result.summary.manifest;
    console.log(
      `overlay ${(result.summary.bytes / 1e6).toFixed(2)} MB in ${result.seconds.toFixed(1)} s; ` +
        `memory ${JSON.stringify(statistics.memory)}; disk ${JSON.stringify(statistics.disk)}`,
    );
    // 2 MiB of random bytes cannot compress: the overlay holds at least them, and not much more.
    expect(result.summary.bytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(result.summary.bytes).toBeLessThan(8 * 1024 * 1024);
    expect(statistics.disk['base-disk'].count + statistics.disk.self.count).toBeGreaterThan(0); // hello-copy

    await applyOverlay(base, join(work, 'custom.zip'), {
      diskOut: join(work, 'applied.raw'),
      memoryOut: join(work, 'applied.snap'),
    });
    await run('qemu-img', [
      'compare',
      '-f',
      'qcow2',
      '-F',
      'raw',
      join(workDir, 'disk.qcow2'),
      join(work, 'applied.raw'),
    ]);
    expect(await pageHashes(join(work, 'applied.snap'))).toEqual(await pageHashes(join(work, 'custom.snap')));

    // Synthesis rebuilds and resumes it (the README's example): the page answers through a forwarded port.
    await rm(workDir, { recursive: true, force: true });
    const page = await synthesizeAndFetch(join(work, 'custom.zip'), 80, '/state.html', registry.home);
    expect(page.trim()).toBe('page-custom');
    expect(await readdir(join(registry.home, 'synthesis'))).toEqual([]);
  });

  it('the overlay of an unchanged VM is tiny', async () => {
    const result = await createOverlay({
      registry,
      base: base.id,
      output: join(work, 'unchanged.zip'),
      prepare: async () => {},
    });
    console.log(`unchanged VM overlay: ${result.summary.bytes} bytes, ${result.stats.chunks} chunks`);
    expect(result.summary.bytes).toBeLessThan(512 * 1024);
  });
});
