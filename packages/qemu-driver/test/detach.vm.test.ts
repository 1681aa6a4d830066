// Detachable VMs under real QEMU: detach leaves the guest running for other processes to reach,
// stopDetachedVm ends it (by QMP, or SIGKILL when QMP does not answer), and a detachable VM whose Node
// dies before detach() still dies.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TinyVm, tinyVm, tinyVmSpec } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDiskOverlay,
  createQemuDriver,
  createQmpClient,
  DetachError,
  type DetachedVm,
  type RunningVm,
  stopDetachedVm,
} from '../src/index.js';
import { connectUnix } from '../src/node-deps.js';
import { qemuAlive, recordingDriver, startFixture, waitUntilGone } from './vm-helpers.js';

/** Fields 4 (ppid) and 6 (session id) of /proc/PID/stat. */
function parentAndSession(pid: number): { ppid: number; sid: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), sid: Number(fields[3]) };
}

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(2);

describe('a detached tiny VM', () => {
  let tiny: TinyVm;
  let work: string;
  let vm: RunningVm;
  let detached: DetachedVm | undefined;
  let stopped = false;
  const { driver } = recordingDriver();

  beforeAll(async () => {
    tiny = tinyVm();
    work = await mkdtemp(join(tmpdir(), 'qd-detach-'));
    await createDiskOverlay({ file: join(work, 'disk.qcow2'), backingFile: tiny.disk, backingFormat: 'raw' });
    const started = performance.now();
    vm = await driver.launch(tinyVmSpec(tiny, { file: join(work, 'disk.qcow2'), format: 'qcow2' }), {
      detachable: true,
    });
    await vm.console.waitFor(tiny.prompt, 60_000);
    console.log(`detachable boot: spawn → shell prompt ${seconds(started)} s`);
  });

  afterAll(async () => {
    if (detached)
      await stopDetachedVm(detached); // left running by a failed test
    else if (vm !== undefined && !stopped) await vm.kill();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('runs in its own session with stderr in qemu.log, and works like any VM before detach', async () => {
    expect(parentAndSession(vm.pid)).toEqual({ ppid: process.pid, sid: vm.pid });
    expect(readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8')).not.toContain('setpriv');
    expect(existsSync(join(vm.paths.dir, 'qemu.log'))).toBe(true);
    await vm.console.run('echo still-here > /tmp/mark');
    expect(await vm.qmp.queryStatus()).toMatchObject({ status: 'running' });
  });

  it('detach() leaves QEMU running, and this RunningVm no longer touches it', async () => {
    const started = performance.now();
    detached = await vm.detach();
    console.log(`detach ${seconds(started)} s`);
    expect(detached).toMatchObject({ pid: vm.pid, runDir: vm.paths.dir });
    expect(await vm.detach()).toBe(detached);
    await expect(vm.console.run('echo x')).rejects.toBeInstanceOf(DetachError);
    await expect(vm.qmp.queryStatus()).rejects.toMatchObject({ code: 'detached' });
    await expect(vm.kill()).rejects.toMatchObject({ code: 'detached' });
    await expect(vm.shutdown()).rejects.toMatchObject({ code: 'detached' });
    await vm[Symbol.asyncDispose](); // nothing, not an error: `await using` scopes may end after detach
    expect(qemuAlive(vm.pid)).toBe(true);
  });

  it('answers a separate Node process on its serial socket, and this process over a fresh QMP connection', async () => {
    const paths = (detached as DetachedVm).paths;
    const started = performance.now();
    const child = startFixture('serial-run.ts', [paths.serialSocket, 'cat /tmp/mark; echo $((6 * 7))']);
    expect(await child.firstLine).toEqual({ output: 'still-here\n42' });
    await child.exited;
    console.log(`separate process: spawn node → command answered ${seconds(started)} s`);
    const qmp = await createQmpClient(await connectUnix(paths.qmpSocket));
    expect(await qmp.queryStatus()).toMatchObject({ status: 'running' });
    await qmp.close();
  });

  it('stopDetachedVm quits it over QMP and removes the run folder', async () => {
    const { pid, runDir } = detached as DetachedVm;
    const started = performance.now();
    expect(await stopDetachedVm({ pid, runDir })).toBe('quit');
    console.log(`stopDetachedVm (quit) ${seconds(started)} s`);
    detached = undefined;
    stopped = true;
    expect(qemuAlive(pid)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
    expect(await stopDetachedVm({ pid, runDir })).toBe('not-running');
  });
});

describe('detachable VMs and their owner process', () => {
  it('a detachable VM whose Node is SIGKILLed before detach() dies (watchdog), run folder removed', async () => {
    const fixture = startFixture('detachable-then.ts', ['wait']);
    const { pid, runDir } = (await fixture.firstLine) as { pid: number; runDir: string };
    expect(qemuAlive(pid)).toBe(true);
    fixture.child.kill('SIGKILL');
    await fixture.exited;
    const started = performance.now();
    expect(await waitUntilGone(pid)).toBe(true);
    console.log(`watchdog: owner SIGKILLed → QEMU gone ${seconds(started)} s`);
    for (let i = 0; i < 50 && existsSync(runDir); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(runDir)).toBe(false);
  });

  it('a Node process that detached ends by itself; another process stops the VM, by SIGKILL when QMP is busy', async () => {
    const fixture = startFixture('detachable-then.ts', ['detach']);
    const { pid, runDir } = (await fixture.firstLine) as { pid: number; runDir: string };
    await fixture.exited; // nothing kept the owner alive
    expect(qemuAlive(pid)).toBe(true);
    // QEMU serves one QMP client at a time: while this one is connected, stopDetachedVm's `quit` cannot get
    // through, so it falls back to SIGKILL (after checking that the PID still names the run folder).
    const holder = await createQmpClient(await connectUnix(join(runDir, 'qmp.sock')));
    expect(await stopDetachedVm({ pid, runDir }, { timeoutMs: 1000 })).toBe('killed');
    await holder.close();
    expect(await waitUntilGone(pid)).toBe(true);
    expect(existsSync(runDir)).toBe(false);
  });

  it('detach() needs detachable: true', async () => {
    const vm = await createQemuDriver().launch({ memoryMiB: 64 });
    await expect(vm.detach()).rejects.toMatchObject({ code: 'not-detachable' });
    expect(qemuAlive(vm.pid)).toBe(true);
    await vm.kill();
  });
});
