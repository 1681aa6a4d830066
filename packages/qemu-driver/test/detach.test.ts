import { describe, expect, it } from 'vitest';
import {
  createQemuDriver,
  DetachError,
  detachedVmRunning,
  QemuExitedError,
  stopDetachedVm,
} from '../src/index.js';
import { fakeClock } from './fakes/fake-clock.js';
import { type FakeHost, fakeHost } from './fakes/fake-qemu.js';
import { fakeQmp } from './fakes/fake-qmp.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function launchDetachable(host: FakeHost = fakeHost()) {
  const vm = await createQemuDriver(host.deps).launch({ memoryMiB: 64 }, { detachable: true });
  return { host, vm, qemu: host.last() };
}

describe('a detachable VM', () => {
  it('spawns QEMU itself in its own session with stderr to qemu.log, plus a watchdog shell', async () => {
    const { host, vm, qemu } = await launchDetachable();
    expect(qemu.command).toBe('qemu-system-x86_64'); // no setpriv: its parent-death signal cannot be undone
    expect(qemu.options).toEqual({ detached: true, stderrFile: '/fake/run1/qemu.log' });
    expect(host.watchdogs).toHaveLength(1);
    const [watchdog] = host.watchdogs;
    expect(watchdog?.options).toEqual({ detached: true, stdin: 'pipe' });
    expect(watchdog?.args.slice(2)).toEqual(['cloudlet-watchdog', '1000', '/fake/run1', 'remove']);
    expect(host.tracked.size).toBe(1); // the exit guard stays until detach
    await vm.kill();
    expect(watchdog?.stdinText()).toBe('release\n'); // QEMU is gone: nothing left to watch
    expect(host.removedDirs).toEqual(['/fake/run1']);
  });

  it('tells the watchdog to keep the run folder with keepRunDir', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(
      { memoryMiB: 64 },
      { detachable: true, keepRunDir: true },
    );
    expect(host.watchdogs[0]?.args.at(-1)).toBe('keep');
    await vm.kill();
  });

  it('reads QEMU errors from qemu.log', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => {
      qemu.socketsAfterAttempts = 1000;
      host.files.set('/fake/run1/qemu.log', 'qemu-system-x86_64: -m 64: cannot set up guest memory\n');
      setImmediate(() => qemu.exit(1, null));
    });
    const error = await createQemuDriver(host.deps)
      .launch({ memoryMiB: 64 }, { detachable: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QemuExitedError);
    expect((error as QemuExitedError).stderr).toContain('cannot set up guest memory');
    expect(host.watchdogs[0]?.stdinText()).toBe('release\n');
  });

  it('detach() closes the controls, drops exit guard and watchdog, and leaves QEMU and its run folder', async () => {
    const { host, vm, qemu } = await launchDetachable();
    const detached = await vm.detach();
    expect(detached).toEqual({ pid: 1000, runDir: '/fake/run1', paths: vm.paths });
    expect(await vm.detach()).toBe(detached);
    expect(host.tracked.size).toBe(0);
    expect(host.watchdogs[0]?.stdinText()).toBe('release\n');
    expect(host.watchdogs[0]?.unrefed).toBe(true);
    expect(qemu.unrefed).toBe(true);
    expect(qemu.qmp.socket.destroyed || qemu.qmp.socket.writableEnded).toBe(true);
    expect(qemu.shell.socket.destroyed || qemu.shell.socket.writableEnded).toBe(true);
    const sent = qemu.qmp.commands.length;
    for (const call of [
      () => vm.qmp.queryStatus(),
      () => vm.qmp.quit(),
      () => vm.console.run('echo hi'),
      () => vm.snapshot(),
      () => vm.cont(),
      () => vm.shutdown(),
      () => vm.kill(),
    ]) {
      await expect(call()).rejects.toMatchObject({ name: 'DetachError', code: 'detached' });
    }
    expect(() => vm.console.write('x')).toThrow(DetachError);
    await vm[Symbol.asyncDispose]();
    expect(qemu.qmp.commands).toHaveLength(sent);
    expect(qemu.signals).toEqual([]);
    expect(host.removedDirs).toEqual([]);
  });

  it('detach() needs detachable: true and a live VM', async () => {
    const host = fakeHost();
    const plain = await createQemuDriver(host.deps).launch({ memoryMiB: 64 });
    await expect(plain.detach()).rejects.toMatchObject({ code: 'not-detachable' });
    expect(host.watchdogs).toEqual([]);
    await plain.kill();
    const { vm } = await launchDetachable(host);
    await vm.kill();
    await expect(vm.detach()).rejects.toMatchObject({ code: 'exited' });
  });
});

describe('stopDetachedVm', () => {
  const runDir = '/tmp/cloudlet-vm-abc123';
  const cmdline = ['qemu-system-x86_64', '-qmp', `unix:${runDir}/qmp.sock,server=on,wait=off`];

  function detachedHost() {
    const host = fakeHost();
    const qmp = fakeQmp();
    host.procs.set(4242, cmdline);
    const connected: string[] = [];
    qmp.handle('quit', (_args, id) => {
      qmp.reply(id, { return: {} });
      host.procs.delete(4242);
      qmp.hangUp();
      return undefined;
    });
    const deps = {
      ...host.deps,
      connectUnix: async (path: string) => {
        connected.push(path);
        return qmp.socket;
      },
    };
    return { host, qmp, deps, connected };
  }

  it('quits over the QMP socket in the run folder, then removes the folder', async () => {
    const { host, deps, connected } = detachedHost();
    expect(await stopDetachedVm({ pid: 4242, runDir }, {}, deps)).toBe('quit');
    expect(connected).toEqual([`${runDir}/qmp.sock`]);
    expect(host.signalled).toEqual([]);
    expect(host.removedDirs).toEqual([runDir]);
  });

  it('SIGKILLs the pid when QMP does not answer, since /proc/PID/cmdline still names the run folder', async () => {
    const { host, deps } = detachedHost();
    const time = fakeClock();
    const refused = async () => {
      throw Object.assign(new Error('ECONNREFUSED'), { code: 'ECONNREFUSED' });
    };
    const stopping = stopDetachedVm(
      { pid: 4242, runDir },
      { timeoutMs: 1000 },
      { ...deps, clock: time.clock, connectUnix: refused },
    );
    await tick();
    expect(host.signalled).toEqual([[4242, 'SIGKILL']]);
    host.procs.delete(4242);
    time.advance(20);
    expect(await stopping).toBe('killed');
    expect(host.removedDirs).toEqual([runDir]);
  });

  it('leaves a reused pid alone and only removes the folder', async () => {
    const { host, deps, connected } = detachedHost();
    host.procs.set(4242, ['/usr/bin/vim', '/tmp/cloudlet-vm-other/notes']);
    expect(await stopDetachedVm({ pid: 4242, runDir }, {}, deps)).toBe('not-running');
    expect(connected).toEqual([]);
    expect(host.signalled).toEqual([]);
    expect(host.removedDirs).toEqual([runDir]);
  });

  it('refuses a folder that is not a run folder, since it removes it recursively', async () => {
    const { host, deps } = detachedHost();
    for (const dir of ['/', 'cloudlet-vm-x', '/home/me']) {
      await expect(stopDetachedVm({ pid: 4242, runDir: dir }, {}, deps)).rejects.toMatchObject({
        code: 'not-a-run-dir',
      });
    }
    expect(host.removedDirs).toEqual([]);
  });
});

describe('detachedVmRunning', () => {
  const runDir = '/tmp/cloudlet-vm-abc';
  const cmdlineIs = (cmdline: string[] | undefined) => ({ readProcCmdline: () => cmdline });
  it('is true only while the PID still names the run folder', () => {
    const ours = ['qemu-system-x86_64', '-qmp', `unix:${runDir}/qmp.sock,server=on`];
    expect(detachedVmRunning({ pid: 1, runDir }, cmdlineIs(ours))).toBe(true);
    expect(detachedVmRunning({ pid: 1, runDir }, cmdlineIs(['sleep', '100']))).toBe(false); // a reused PID
    expect(detachedVmRunning({ pid: 1, runDir }, cmdlineIs(undefined))).toBe(false); // gone, or a zombie
  });
});
