// Boots the tiny test VM under real QEMU (TCG): serial console, QMP, port forwarding, kill, no orphans.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TinyVm, tinyVm, tinyVmSpec } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDiskOverlay, mapDisk, type RunningVm } from '../src/index.js';
import { qemuAlive, recordingDriver, startFixture, waitUntilGone } from './vm-helpers.js';

describe('launching the tiny VM', () => {
  let tiny: TinyVm;
  let work: string;
  let vm: RunningVm;
  const { driver } = recordingDriver();

  beforeAll(async () => {
    tiny = tinyVm(); // throws TestVmMissingError (loudly) when test-vms is not built
    work = await mkdtemp(join(tmpdir(), 'qd-launch-'));
    await createDiskOverlay({ file: join(work, 'disk.qcow2'), backingFile: tiny.disk, backingFormat: 'raw' });
    const started = performance.now();
    vm = await driver.launch(tinyVmSpec(tiny, { file: join(work, 'disk.qcow2'), format: 'qcow2' }));
    await vm.console.waitFor(tiny.prompt, 60_000);
    console.log(`boot: spawn → shell prompt ${((performance.now() - started) / 1000).toFixed(2)} s`);
  });

  afterAll(async () => {
    await vm?.kill();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('runs commands on the serial console', async () => {
    expect(await vm.console.run('uname -r')).toMatch(/^6\.1\.0-\d+-cloud-amd64$/);
    const memTotalKiB = Number(
      /^MemTotal:\s+(\d+) kB$/.exec(await vm.console.run('grep MemTotal /proc/meminfo'))?.[1],
    );
    expect(memTotalKiB).toBeGreaterThan(64 * 1024); // 128 MiB minus what the kernel keeps
    expect(memTotalKiB).toBeLessThanOrEqual(128 * 1024);
    expect(await vm.console.run('ls /mnt/www')).toContain('index.html');
    expect(await vm.console.runWithStatus('ls /nope')).toEqual({
      output: 'ls: /nope: No such file or directory',
      status: 1,
    });
  });

  it('keeps long command lines and outputs intact', async () => {
    const long = 'y'.repeat(300);
    expect(await vm.console.run(`echo ${long} | wc -c; echo ${long}`)).toBe(`301\n${long}`);
  });

  it('answers QMP', async () => {
    expect(await vm.qmp.queryStatus()).toMatchObject({ status: 'running', running: true });
    expect(vm.qmp.greeting.version.qemu).toMatchObject({ major: 7, minor: 2 });
  });

  it('logs boot output to serial.log in the private run folder', () => {
    expect(readFileSync(vm.paths.serialLog, 'utf8')).toContain(tiny.prompt);
  });

  it('forwards a host port to the guest httpd', async () => {
    await vm.console.run('httpd -p 80 -h /mnt/www');
    const inGuest = await vm.console.run('cat /mnt/www/index.html');
    const response = await fetch(`http://127.0.0.1:${vm.hostPort(80)}/index.html`);
    expect(response.status).toBe(200);
    expect((await response.text()).trim()).toBe(inGuest.trim());
  });

  it('writes guest disk changes into the qcow2 overlay only', async () => {
    await vm.console.run('echo hello > /mnt/new.txt && sync');
    const ownExtents = (await mapDisk(join(work, 'disk.qcow2'), { forceShare: true })).filter(
      (e) => e.depth === 0 && e.data,
    );
    expect(ownExtents.length).toBeGreaterThan(0);
    const base = execFileSync('qemu-img', ['info', '--output=json', tiny.disk], { encoding: 'utf8' });
    expect(JSON.parse(base).format).toBe('raw');
  });

  it('kill() leaves no QEMU and no run folder, and repeats harmlessly', async () => {
    const { pid, paths } = vm;
    expect(qemuAlive(pid)).toBe(true);
    const exit = await vm.kill();
    expect(exit.signal).toBe('SIGKILL');
    expect(qemuAlive(pid)).toBe(false);
    expect(existsSync(paths.dir)).toBe(false);
    expect(await vm.kill()).toBe(exit);
    await vm.shutdown();
  });
});

describe('shutdown', () => {
  it('quits QEMU through QMP and removes the run folder', async () => {
    const { driver } = recordingDriver();
    const vm = await driver.launch({ memoryMiB: 64 });
    const exit = await vm.shutdown({ timeoutMs: 10_000 });
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(qemuAlive(vm.pid)).toBe(false);
    expect(existsSync(vm.paths.dir)).toBe(false);
  });

  it('async dispose stops the VM', async () => {
    const { driver } = recordingDriver();
    let pid = 0;
    {
      await using vm = await driver.launch({ memoryMiB: 64 });
      pid = vm.pid;
      expect(qemuAlive(pid)).toBe(true);
    }
    expect(qemuAlive(pid)).toBe(false);
  });
});

describe('no orphan QEMU', () => {
  it('a Node process that launched a VM and is SIGKILLed leaves no QEMU (parent-death signal)', async () => {
    const fixture = startFixture('launch-then.ts', ['wait']);
    const { pid, runDir } = (await fixture.firstLine) as { pid: number; runDir: string };
    expect(qemuAlive(pid)).toBe(true);
    fixture.child.kill('SIGKILL');
    await fixture.exited;
    expect(await waitUntilGone(pid)).toBe(true);
    // A SIGKILLed Node runs no code, so its (small) run folder stays behind.
    await rm(runDir, { recursive: true, force: true });
  });

  it('a Node process that exits without cleaning up kills its QEMU and removes the run folder (exit hook)', async () => {
    const fixture = startFixture('launch-then.ts', ['exit']);
    const { pid, runDir } = (await fixture.firstLine) as { pid: number; runDir: string };
    await fixture.exited;
    expect(await waitUntilGone(pid)).toBe(true);
    expect(existsSync(runDir)).toBe(false);
  });
});
