import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import {
  createQemuDriver,
  MigrationFailedError,
  parseVmSpec,
  QemuExitedError,
  qemuArgv,
  runPathsIn,
  type VmSpecInput,
} from '../src/index.js';
import { fakeHost } from './fakes/fake-qemu.js';

const spec: VmSpecInput = {
  memoryMiB: 128,
  kernel: '/k/vmlinuz',
  disks: [{ file: '/d/disk.qcow2', format: 'qcow2' }],
  nics: [{ portForwards: [{ guestPort: 80 }, { hostPort: 2222, guestPort: 22 }] }],
};

const SIZE_MISMATCH =
  'qemu-system-x86_64: Size mismatch: pc.ram: 0x8000000 != 0x10000000: Invalid argument\n' +
  "qemu-system-x86_64: error while loading state for instance 0x0 of device 'ram'\n" +
  'qemu-system-x86_64: load of migration failed: Invalid argument\n';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('driver.launch', () => {
  it('spawns QEMU through setpriv with a parent-death SIGKILL and the derived argv', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const qemu = host.last();
    expect(qemu.command).toBe('setpriv');
    expect(qemu.args.slice(0, 4)).toEqual(['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64']);
    const resolved = parseVmSpec({
      ...spec,
      nics: [
        {
          portForwards: [
            { hostPort: 40000, guestPort: 80 },
            { hostPort: 2222, guestPort: 22 },
          ],
        },
      ],
    });
    expect(qemu.args.slice(4)).toEqual(qemuArgv(resolved, runPathsIn('/fake/run1')));
    expect(vm.pid).toBe(1000);
    expect(vm.paths.dir).toBe('/fake/run1');
    await vm.kill();
  });

  it('reports the real host ports, picked for port 0', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    expect(vm.portForwards.map((f) => [f.nic, f.proto, f.hostAddress, f.hostPort, f.guestPort])).toEqual([
      [0, 'tcp', '127.0.0.1', 40000, 80],
      [0, 'tcp', '127.0.0.1', 2222, 22],
    ]);
    expect(vm.hostPort(80)).toBe(40000);
    expect(vm.spec.nics[0]?.portForwards[0]?.hostPort).toBe(40000);
    expect(() => vm.hostPort(80, 'udp')).toThrow(/no udp port forward/);
    await vm.kill();
  });

  it('keeps connecting until QEMU has created its sockets', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => {
      qemu.socketsAfterAttempts = 5;
    });
    const vm = await createQemuDriver(host.deps).launch(spec);
    expect(host.last().attempts).toBeGreaterThan(5);
    expect(host.last().qmp.commands.map((c) => c.execute)).toEqual(['qmp_capabilities']);
    await vm.kill();
  });

  it('hands out a connected QMP client and serial console', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => qemu.shell.respond('echo $FOO', 'bar123\n'));
    const vm = await createQemuDriver(host.deps).launch(spec);
    expect(vm.qmp.greeting.version.qemu.major).toBe(7);
    expect(await vm.console.run('echo $FOO')).toBe('bar123');
    await vm.kill();
  });

  it('fails with QemuExitedError and a distilled reason when QEMU exits at start-up', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => {
      qemu.socketsAfterAttempts = 1000;
      setTimeout(
        () =>
          qemu.exit(
            1,
            null,
            "qemu-system-x86_64: -drive file=/d/disk.qcow2: Could not open '/d/disk.qcow2': No such file or directory\n",
          ),
        30,
      );
    });
    const error = await createQemuDriver(host.deps)
      .launch(spec)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QemuExitedError);
    expect(error).toMatchObject({ code: 1, signal: null, during: 'start-up' });
    expect((error as QemuExitedError).reason).toBe(
      'cannot open disk image /d/disk.qcow2: No such file or directory',
    );
    expect((error as Error).message).toContain('Could not open'.length > 0 ? 'cannot open disk image' : '');
    expect(host.removedDirs).toEqual(['/fake/run1']);
    expect(host.tracked.size).toBe(0);
  });

  it('reports a missing setpriv or QEMU binary as QemuExitedError', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => {
      qemu.socketsAfterAttempts = 1000;
      setImmediate(() => qemu.emitter.emit('error', new Error('spawn setpriv ENOENT')));
    });
    const error = await createQemuDriver(host.deps)
      .launch(spec)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QemuExitedError);
    expect((error as Error).message).toContain('spawn setpriv ENOENT');
  });

  it('retries once with fresh ports when a picked port was taken before QEMU bound it', async () => {
    const host = fakeHost();
    host.onSpawn((qemu, index) => {
      if (index > 0) return;
      qemu.socketsAfterAttempts = 1000;
      setImmediate(() =>
        qemu.exit(
          1,
          null,
          "qemu-system-x86_64: -netdev user: Could not set up host forwarding rule 'tcp:127.0.0.1:40000-:80'\n",
        ),
      );
    });
    const vm = await createQemuDriver(host.deps).launch(spec);
    expect(host.spawned).toHaveLength(2);
    expect(vm.hostPort(80)).toBe(40001);
    expect(vm.paths.dir).toBe('/fake/run2');
    expect(host.removedDirs).toEqual(['/fake/run1']);
    await vm.kill();
  });

  it('does not retry when every host port was fixed by the caller', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => {
      qemu.socketsAfterAttempts = 1000;
      setImmediate(() =>
        qemu.exit(
          1,
          null,
          "qemu-system-x86_64: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'\n",
        ),
      );
    });
    const fixed = { ...spec, nics: [{ portForwards: [{ hostPort: 2222, guestPort: 22 }] }] };
    const error = await createQemuDriver(host.deps)
      .launch(fixed)
      .catch((e: unknown) => e);
    expect((error as QemuExitedError).reason).toContain('host port forwarding tcp:127.0.0.1:2222-:22 failed');
    expect(host.spawned).toHaveLength(1);
  });

  it('rejects an invalid spec before spawning anything', async () => {
    const host = fakeHost();
    await expect(createQemuDriver(host.deps).launch({ memoryMiB: 128, cpu: 'host' })).rejects.toThrow(/cpu/);
    expect(host.spawned).toHaveLength(0);
  });
});

describe('RunningVm lifecycle', () => {
  it('registers a last-resort exit hook that SIGKILLs QEMU and removes its run folder', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const [entry] = [...host.tracked];
    expect(entry?.runDir).toBe('/fake/run1');
    entry?.kill(); // what process.on('exit') does
    expect(host.last().signals).toEqual(['SIGKILL']);
    await vm.exited;
    expect(host.tracked.size).toBe(0);
    await vm.kill();
  });

  it('leaves a kept run folder out of the exit hook', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec, { keepRunDir: true });
    expect([...host.tracked][0]?.runDir).toBeUndefined();
    await vm.kill();
    expect(host.removedDirs).toEqual([]);
  });

  it('kill() SIGKILLs, awaits the exit, removes the run folder, and is idempotent', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const [first, second] = await Promise.all([vm.kill(), vm.kill()]);
    expect(first).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
    expect(second).toBe(first);
    await vm.kill();
    expect(host.last().signals).toEqual(['SIGKILL']);
    expect(host.removedDirs).toEqual(['/fake/run1']);
    expect(host.tracked.size).toBe(0);
    expect(await vm.exited).toBe(first);
  });

  it('shutdown() sends QMP quit and waits for QEMU to leave', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const exit = await vm.shutdown();
    expect(exit.code).toBe(0);
    expect(host.last().qmp.commands.map((c) => c.execute)).toContain('quit');
    expect(host.last().signals).toEqual([]);
    expect(host.removedDirs).toEqual(['/fake/run1']);
    await vm.shutdown();
    await vm.kill();
    expect(host.last().signals).toEqual([]);
  });

  it('shutdown() SIGKILLs a QEMU that ignores quit', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => qemu.qmp.handle('quit', () => ({ return: {} })));
    const vm = await createQemuDriver(host.deps).launch(spec);
    const exit = await vm.shutdown({ timeoutMs: 20 });
    expect(exit.signal).toBe('SIGKILL');
  });

  it('async dispose shuts down and keeps the run folder when asked', async () => {
    const host = fakeHost();
    {
      await using vm = await createQemuDriver(host.deps).launch(spec, { keepRunDir: true });
      expect(vm.pid).toBe(1000);
    }
    expect(host.last().exited).toBe(true);
    expect(host.removedDirs).toEqual([]);
  });

  it('maps a QMP command cut off by QEMU dying to QemuExitedError', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const qemu = host.last();
    qemu.qmp.handle('cont', () => {
      qemu.exit(null, 'SIGSEGV', 'qemu-system-x86_64: something broke\n');
      return undefined;
    });
    const error = await vm.cont().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QemuExitedError);
    expect(error).toMatchObject({ signal: 'SIGSEGV', reason: 'something broke' });
    expect((error as Error).message).toBe('QEMU was killed by SIGSEGV during cont: something broke');
    await vm.kill();
    expect(host.removedDirs).toEqual(['/fake/run1']);
  });
  it('reports console and QMP calls cut short by a QEMU exit as QemuExitedError', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const qemu = host.last();
    qemu.shell.hang('reboot -f');
    const running = vm.console.run('reboot -f').catch((e: unknown) => e);
    await tick();
    qemu.exit(0, null, 'qemu-system-x86_64: terminating on guest reset (no-reboot)\n');
    const error = await running;
    expect(error).toBeInstanceOf(QemuExitedError);
    expect((error as Error).message).toContain('during console command reboot -f');
    await expect(vm.qmp.queryStatus()).rejects.toBeInstanceOf(QemuExitedError);
    await expect(vm.qmp.execute('query-status')).rejects.toBeInstanceOf(QemuExitedError);
    await vm.kill();
  });

  it('lets QMP quit through the guarded client', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    await expect(vm.qmp.quit()).resolves.toBeUndefined();
    expect((await vm.exited).code).toBe(0);
    await vm.kill();
  });
});

describe('RunningVm.snapshot', () => {
  it('stops, raises the bandwidth, enables events and migrates into a socket Node listens on', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const qemu = host.last();
    qemu.qmp.handle('migrate', () => {
      queueMicrotask(() => {
        const peer = host.migrationListeners[0]?.connect();
        qemu.qmp.event('MIGRATION', { status: 'active' });
        peer?.send(Buffer.from('QEVM'));
        peer?.send(Buffer.from('-rest-of-stream'));
        peer?.end();
        qemu.qmp.event('MIGRATION', { status: 'completed' });
      });
      return { return: {} };
    });
    qemu.qmp.handle('query-migrate', () => ({ return: { status: 'completed', 'total-time': 12 } }));
    const snapshot = await vm.snapshot();
    expect((await buffer(snapshot.stream)).toString()).toBe('QEVM-rest-of-stream');
    expect(await snapshot.completed).toMatchObject({ status: 'completed', 'total-time': 12 });
    expect(qemu.qmp.commands.slice(1).map((c) => [c.execute, c.arguments])).toEqual([
      ['stop', undefined],
      ['migrate-set-parameters', { 'max-bandwidth': 17179869184 }],
      ['migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] }],
      ['migrate', { uri: 'unix:/fake/run1/migrate-out.sock' }],
      ['query-migrate', undefined],
    ]);
    expect(host.migrationListeners[0]).toMatchObject({ path: '/fake/run1/migrate-out.sock', closed: true });
    await vm.kill();
  });

  it('rejects completed with MigrationFailedError carrying error-desc', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    const qemu = host.last();
    qemu.qmp.handle('migrate', () => {
      queueMicrotask(() => {
        host.migrationListeners[0]?.connect();
        qemu.qmp.event('MIGRATION', { status: 'failed' });
      });
      return { return: {} };
    });
    qemu.qmp.handle('query-migrate', () => ({
      return: { status: 'failed', 'error-desc': 'Unable to write to socket' },
    }));
    const snapshot = await vm.snapshot();
    const error = await snapshot.completed.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect(error).toMatchObject({ status: 'failed', desc: 'Unable to write to socket' });
    expect(snapshot.stream.destroyed).toBe(true);
    await vm.kill();
  });

  it('passes on QEMU refusing to migrate (e.g. a second snapshot without cont)', async () => {
    const host = fakeHost();
    const vm = await createQemuDriver(host.deps).launch(spec);
    host.last().qmp.handle('migrate', () => ({
      error: {
        class: 'GenericError',
        desc: "Can't migrate the vm that was paused due to previous migration",
      },
    }));
    await expect(vm.snapshot()).rejects.toMatchObject({ name: 'QmpError', class: 'GenericError' });
    expect(host.migrationListeners[0]?.closed).toBe(true);
    await vm.kill();
  });
});

describe('driver.restore', () => {
  it('launches with -incoming defer, streams the snapshot into QEMU, then resumes the guest', async () => {
    const host = fakeHost();
    const chunks = [Buffer.from('QEVM'), Buffer.alloc(100_000, 7), Buffer.from('end')];
    const vm = await createQemuDriver(host.deps).restore(spec, Readable.from(chunks));
    const qemu = host.last();
    expect(qemu.args.slice(-2)).toEqual(['-incoming', 'defer']);
    expect(Buffer.concat(qemu.incoming)).toEqual(Buffer.concat(chunks));
    expect(qemu.qmp.commands.slice(1).map((c) => [c.execute, c.arguments])).toEqual([
      ['migrate-set-parameters', { 'max-bandwidth': 17179869184 }],
      ['migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] }],
      ['migrate-incoming', { uri: 'unix:/fake/run1/migrate-in.sock' }],
      ['query-migrate', undefined],
      ['cont', undefined],
    ]);
    await vm.kill();
  });

  it('accepts an async iterable and can leave the guest paused', async () => {
    const host = fakeHost();
    async function* stream() {
      yield new Uint8Array([1, 2]);
      yield new Uint8Array([3]);
    }
    const vm = await createQemuDriver(host.deps).restore(spec, stream(), { paused: true });
    expect(Buffer.concat(host.last().incoming)).toEqual(Buffer.from([1, 2, 3]));
    expect(host.last().qmp.commands.map((c) => c.execute)).not.toContain('cont');
    await vm.kill();
  });

  it('rejects with QemuExitedError naming the reason when QEMU refuses the stream, leaving nothing behind', async () => {
    const host = fakeHost();
    host.onSpawn((qemu) => {
      qemu.onIncoming = (peer) => peer.onData(() => qemu.exit(1, null, SIZE_MISMATCH));
    });
    const endless = new Readable({
      read() {
        this.push(Buffer.alloc(65536));
      },
    });
    const error = await createQemuDriver(host.deps)
      .restore(spec, endless)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QemuExitedError);
    expect((error as Error).message).toContain('Size mismatch: pc.ram: 0x8000000 != 0x10000000');
    expect((error as QemuExitedError).reason).toMatch(
      /^memory size differs from the snapshot: RAM block pc.ram is 128 MiB/,
    );
    expect(error).toMatchObject({ code: 1, during: 'restore', stderr: SIZE_MISMATCH });
    expect(host.last().exited).toBe(true);
    expect(host.removedDirs).toEqual(['/fake/run1']);
    expect(host.tracked.size).toBe(0);
    await tick();
    expect(endless.destroyed).toBe(true);
  });
});
