// Snapshot a running tiny VM through the driver into the migration-stream reader (and a file), rebuild the
// stream with the writer (pages shuffled and re-sectioned, zero pages dropped) and restore it in a fresh QEMU
// on a copy of the disk state: every piece of guest state must survive, and a mismatched restore must fail
// cleanly.
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type CollectedMigrationStream,
  collectMigrationStream,
  pageIndexer,
  writeMigrationStream,
} from '@cloudlet/memory-snapshot';
import {
  fetchStatePage,
  type GuestState,
  giveGuestState,
  readGuestState,
  sampleCounter,
  type TinyVm,
  tinyVm,
  tinyVmSpec,
} from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertDisk, createDiskOverlay, QemuExitedError, type RunningVm } from '../src/index.js';
import { shuffled } from './shuffle.js';
import { qemuAlive, recordingDriver } from './vm-helpers.js';

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(2);

describe('snapshot and restore of the tiny VM', () => {
  let tiny: TinyVm;
  let work: string;
  let source: RunningVm | undefined;
  let restored: RunningVm | undefined;
  let before: GuestState;
  let sourcePort: number;
  let collected: CollectedMigrationStream;
  const { driver, pids, runDirs } = recordingDriver();
  const snapFile = () => join(work, 'mem.snap');
  const diskAtSnapshot = () => join(work, 'disk-at-snapshot.raw');

  beforeAll(async () => {
    tiny = tinyVm();
    work = await mkdtemp(join(tmpdir(), 'qd-snap-'));
    await createDiskOverlay({
      file: join(work, 'source.qcow2'),
      backingFile: tiny.disk,
      backingFormat: 'raw',
    });
    source = await driver.launch(tinyVmSpec(tiny, { file: join(work, 'source.qcow2'), format: 'qcow2' }));
    await source.console.waitFor(tiny.prompt, 60_000);
    before = await giveGuestState(source.console);
    sourcePort = source.hostPort(80);
    expect(await fetchStatePage(sourcePort)).toBe(before.page);
  });

  afterAll(async () => {
    await Promise.allSettled([source?.kill(), restored?.kill()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('snapshots into a file; the VM waits in postmigrate and the disk can be copied', async () => {
    if (!source) throw new Error('no source VM');
    const started = performance.now();
    const snapshot = await source.snapshot();
    // One stream, two readers: the migration-stream reader and a file (for the mismatch tests below).
    const toReader = new PassThrough();
    const toFile = new PassThrough();
    snapshot.stream.pipe(toReader);
    snapshot.stream.pipe(toFile);
    const [stream, , info] = await Promise.all([
      collectMigrationStream(toReader),
      pipeline(toFile, createWriteStream(snapFile())),
      snapshot.completed,
    ]);
    collected = stream;
    const size = (await stat(snapFile())).size;
    console.log(
      `snapshot: ${seconds(started)} s, ${(size / 1e6).toFixed(1)} MB, QEMU total-time ${info['total-time']} ms`,
    );
    expect(info.status).toBe('completed');
    expect(size).toBeGreaterThan(1_000_000);
    expect((await source.qmp.queryStatus()).status).toBe('postmigrate');
    // The memory snapshot pairs with exactly this disk state; QEMU has released its image locks now.
    await convertDisk({ source: join(work, 'source.qcow2'), target: diskAtSnapshot(), targetFormat: 'raw' });
  });

  it('the reader sees the whole stream: machine type, block table, every page exactly once', () => {
    const { prologue, pages, zeroPages } = collected;
    expect(prologue.machineType).toMatch(/^pc-i440fx-/);
    expect(prologue.blocks).toContainEqual({ name: 'pc.ram', length: tiny.memoryMiB * 1024 * 1024 });
    expect(prologue.blocks.map((b) => b.name)).toContain('0000:00:03.0/virtio-net-pci.rom');
    const indexer = pageIndexer(prologue.blocks);
    const seen = new Set(pages.map((p) => indexer.indexOf(p.block, p.offset)));
    expect(seen.size).toBe(pages.length);
    expect(pages.length + zeroPages).toBe(indexer.pageCount);
    expect(collected.deviceTail.length).toBeGreaterThan(10_000);
  });

  it('cont() resumes the source after the snapshot', async () => {
    if (!source) throw new Error('no source VM');
    await source.cont();
    expect((await source.qmp.queryStatus()).status).toBe('running');
    expect((await readGuestState(source.console)).shellVariable).toBe(before.shellVariable);
    await source.kill();
  });

  it('restores the rewritten stream in a fresh QEMU on a copy of the disk: shell, tmpfs, counter, disk and httpd survive', async () => {
    const disk = join(work, 'restored.raw');
    await copyFile(diskAtSnapshot(), disk);
    const rewritten = writeMigrationStream({
      prologue: collected.prologue,
      pages: shuffled(collected.pages), // zero pages were dropped by collectMigrationStream
      deviceTail: collected.deviceTail,
      pagesPerSection: 777,
    });
    const started = performance.now();
    restored = await driver.restore(tinyVmSpec(tiny, { file: disk, format: 'raw' }), rewritten);
    const loaded = seconds(started);
    const after = await readGuestState(restored.console);
    console.log(`restore: resumed after ${loaded} s, shell answered after ${seconds(started)} s`);

    expect(after.shellVariable).toBe(before.shellVariable);
    expect(after.tmpfsSha256).toBe(before.tmpfsSha256);
    expect(after.diskFile).toBe(before.diskFile);
    expect(after.page).toBe(before.page);
    const [first, second] = await sampleCounter(restored.console);
    expect(first).toBeGreaterThanOrEqual(before.counter);
    expect(second).toBeGreaterThan(first);
    expect(await restored.console.run('jobs')).toMatch(/Running/);
  });

  it('serves the page through a different host port after restore', async () => {
    if (!restored) throw new Error('no restored VM');
    const port = restored.hostPort(80);
    expect(port).not.toBe(sourcePort);
    expect(await fetchStatePage(port)).toBe(before.page);
  });

  it('gets the host time back with hwclock -s -u (the clock is stale after restore, qemu-notes §4)', async () => {
    if (!restored) throw new Error('no restored VM');
    await restored.console.run('hwclock -s -u');
    const guestSeconds = Number(await restored.console.run('date +%s'));
    expect(Math.abs(guestSeconds - Date.now() / 1000)).toBeLessThan(5);
  });

  it('can snapshot the restored VM again', async () => {
    if (!restored) throw new Error('no restored VM');
    const snapshot = await restored.snapshot();
    await Promise.all([
      pipeline(snapshot.stream, createWriteStream(join(work, 'again.snap'))),
      snapshot.completed,
    ]);
    await restored.cont();
    expect(await restored.console.run('echo "$CLOUDLET_STATE"')).toBe(before.shellVariable);
    await restored.kill();
  });

  it('rejects a restore with a different memory size with QemuExitedError, leaving no QEMU and no run folder', async () => {
    const disk = join(work, 'mismatch.raw');
    await copyFile(diskAtSnapshot(), disk);
    const spawnedBefore = pids.length;
    const error = await driver
      .restore(
        { ...tinyVmSpec(tiny, { file: disk, format: 'raw' }), memoryMiB: 256 },
        createReadStream(snapFile()),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QemuExitedError);
    expect((error as Error).message).toContain('Size mismatch: pc.ram: 0x8000000 != 0x10000000');
    expect((error as QemuExitedError).reason).toMatch(/128 MiB in the snapshot but 256 MiB in this VM/);
    expect((error as QemuExitedError).code).toBe(1);
    expect(pids.length).toBe(spawnedBefore + 1);
    const pid = pids.at(-1) ?? 0;
    expect(qemuAlive(pid)).toBe(false);
    expect(existsSync(runDirs.at(-1) ?? '/')).toBe(false);
  });

  it('rejects a restore with a different PCI slot for the NIC', async () => {
    const disk = join(work, 'mismatch2.raw');
    await copyFile(diskAtSnapshot(), disk);
    const spec = {
      ...tinyVmSpec(tiny, { file: disk, format: 'raw' }),
      nics: [{ pciSlot: 0x05, portForwards: [] }],
    };
    const error = await driver.restore(spec, createReadStream(snapFile())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QemuExitedError);
    expect((error as QemuExitedError).reason).toMatch(
      /RAM block "0000:00:03.0\/virtio-net-pci.rom" that this VM lacks/,
    );
    expect(qemuAlive(pids.at(-1) ?? 0)).toBe(false);
  });
});
