// One suite every VmBackend passes (run by conformance-*.vm.test.ts): boot the tiny VM, a serial command,
// snapshot, restore on the disk of that moment, every piece of guest state survives (shell variable, tmpfs
// file, counter, httpd through a forwarded port), stop, and nothing is left: no QEMU, no run folder, no
// libvirt domain.
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  type CollectedMigrationStream,
  collectMigrationStream,
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
  until,
} from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  convertDisk,
  createDiskOverlay,
  type RunningVm,
  stopDetachedVm,
  type VmBackend,
} from '../src/index.js';
import { qemuAlive, waitUntilGone } from './vm-helpers.js';

export interface ConformanceTarget {
  readonly name: string;
  /** Called in beforeAll (daemons may start there). */
  readonly backend: () => Promise<VmBackend>;
  /** Names of anything the backend still holds (libvirt domains) for VMs run under `runParent`; [] when clean. */
  readonly leftovers: (runParent: string) => Promise<string[]>;
  readonly cleanup?: () => Promise<void>;
  /** A VM on a remote host cannot be detached (its tunnels end with this process): then it must be refused. */
  readonly detach?: 'supported' | 'refused';
}

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(2);

export function describeConformance(target: ConformanceTarget): void {
  describe(`VmBackend conformance: ${target.name}`, () => {
    let tiny: TinyVm;
    let work: string;
    let runParent: string;
    let backend: VmBackend;
    let source: RunningVm | undefined;
    let restored: RunningVm | undefined;
    let before: GuestState;
    let collected: CollectedMigrationStream;
    const pids: number[] = [];

    /** The snapshot, rebuilt by the writer, restored on a fresh copy of the disk of its moment. */
    async function restoreSnapshot(diskName: string, options: { detachable?: boolean } = {}) {
      const disk = join(work, diskName);
      await copyFile(join(work, 'snap.raw'), disk);
      const stream = writeMigrationStream({
        prologue: collected.prologue,
        pages: collected.pages,
        deviceTail: collected.deviceTail,
      });
      return backend.restore(tinyVmSpec(tiny, { file: disk, format: 'raw' }), stream, {
        runDirParent: runParent,
        ...options,
      });
    }

    beforeAll(async () => {
      tiny = tinyVm();
      work = await mkdtemp(join(tmpdir(), 'qd-conf-'));
      runParent = await mkdtemp(join(tmpdir(), 'qd-runs-'));
      backend = await target.backend();
      await createDiskOverlay({
        file: join(work, 'source.qcow2'),
        backingFile: tiny.disk,
        backingFormat: 'raw',
      });
    });

    afterAll(async () => {
      await Promise.allSettled([source?.kill(), restored?.kill()]);
      await rm(work, { recursive: true, force: true });
      await rm(runParent, { recursive: true, force: true });
      await target.cleanup?.();
    });

    it('launches the tiny VM and runs a serial command', async () => {
      const started = performance.now();
      source = await backend.launch(tinyVmSpec(tiny, { file: join(work, 'source.qcow2'), format: 'qcow2' }), {
        runDirParent: runParent,
      });
      pids.push(source.pid);
      expect(qemuAlive(source.pid)).toBe(true);
      expect(source.qemuVersion).toMatch(/^7\.2\./);
      await source.console.waitFor(tiny.prompt, 90_000);
      console.log(`${target.name}: boot to prompt ${seconds(started)} s`);
      expect(await source.console.run('echo $((6 * 7))')).toBe('42');
      before = await giveGuestState(source.console);
      expect(await fetchStatePage(source.hostPort(80))).toBe(before.page);
    });

    it('snapshots: a plain migration stream, and the disk of that moment can be copied', async () => {
      if (!source) throw new Error('no source VM');
      const started = performance.now();
      const snapshot = await source.snapshot();
      const copy = new PassThrough();
      snapshot.stream.pipe(copy);
      const [stream, info] = await Promise.all([collectMigrationStream(copy), snapshot.completed]);
      collected = stream;
      console.log(`${target.name}: snapshot ${seconds(started)} s, ${collected.pages.length} non-zero pages`);
      expect(info.status).toBe('completed');
      expect(collected.prologue.machineType).toMatch(/^pc-i440fx-7\.2/);
      expect(collected.prologue.blocks.map((b) => b.name)).toContain('0000:00:03.0/virtio-net-pci.rom');
      await convertDisk({
        source: join(work, 'source.qcow2'),
        target: join(work, 'snap.raw'),
        targetFormat: 'raw',
      });
      await source.kill();
      expect(await waitUntilGone(source.pid)).toBe(true);
    });

    it('restores on a copy of that disk: shell, tmpfs, counter, disk file and httpd survive', async () => {
      const started = performance.now();
      restored = await restoreSnapshot('restored.raw');
      pids.push(restored.pid);
      const loaded = seconds(started);
      const after = await readGuestState(restored.console);
      console.log(`${target.name}: restore ${loaded} s, first command answered ${seconds(started)} s`);
      expect(after.shellVariable).toBe(before.shellVariable);
      expect(after.tmpfsSha256).toBe(before.tmpfsSha256);
      expect(after.diskFile).toBe(before.diskFile);
      const [first, second] = await sampleCounter(restored.console);
      expect(first).toBeGreaterThanOrEqual(before.counter);
      expect(second).toBeGreaterThan(first);
      expect(await fetchStatePage(restored.hostPort(80))).toBe(before.page);
    });

    it('stops, leaving no QEMU, no run folder and nothing in the backend', async () => {
      if (!restored) throw new Error('no restored VM');
      const runDir = restored.paths.dir;
      await restored.shutdown({ timeoutMs: 10_000 });
      for (const pid of pids) expect(await waitUntilGone(pid)).toBe(true);
      expect(existsSync(runDir)).toBe(false);
      expect(await readdir(runParent)).toEqual([]);
      expect(await target.leftovers(runParent)).toEqual([]);
    });

    const refusesDetach = target.detach === 'refused';
    it(
      refusesDetach
        ? 'refuses a detachable VM, starting nothing'
        : 'a detachable VM outlives detach(); stopDetachedVm ends it and nothing is left',
      async () => {
        if (refusesDetach) {
          await expect(restoreSnapshot('detached.raw', { detachable: true })).rejects.toThrow(
            /cannot be detached/,
          );
          expect(await readdir(runParent)).toEqual([]);
          expect(await target.leftovers(runParent)).toEqual([]);
          return;
        }
        const vm = await restoreSnapshot('detached.raw', { detachable: true });
        const hostPort = vm.hostPort(80);
        const detached = await vm.detach();
        expect(qemuAlive(detached.pid)).toBe(true);
        expect(await fetchStatePage(hostPort)).toBe(before.page); // served with nothing of ours attached
        expect(await stopDetachedVm(detached)).toBe('quit');
        expect(await waitUntilGone(detached.pid)).toBe(true);
        expect(existsSync(detached.runDir)).toBe(false);
        // libvirt drops the domain when it has handled QEMU's exit, a moment after the process is gone.
        await until(
          async () => (await target.leftovers(runParent)).length === 0,
          'nothing left in the backend',
          5000,
        );
      },
    );
  });
}
