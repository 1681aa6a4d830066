// The libvirt backend's process handling with a fake libvirt connection and host: what it reads, when it
// destroys the domain, the watchdog that stands in for Node's exit hook, and detach (remote hosts: libvirt-remote.test.ts).
import { describe, expect, it } from 'vitest';
import { createLibvirtBackend, type LibvirtConnection } from '../src/index.js';
import { attachDomainProcess, type DomainHostDeps } from '../src/libvirt/domain-process.js';
import { fakeClock } from './fakes/fake-clock.js';
import { fakeHost } from './fakes/fake-qemu.js';

function fakeConnection() {
  const calls: string[] = [];
  let active = true;
  const conn: LibvirtConnection = {
    uri: 'qemu:///system',
    createDomain: async () => void calls.push('create'),
    destroyDomain: async (name) => {
      calls.push(`destroy ${name}`);
      active = false;
    },
    saveDomain: async (name) => void calls.push(`save ${name}`),
    restoreDomain: async () => void calls.push('restore'),
    listDomains: async () => [],
    isActive: async () => active,
    destroyDomainSync: (name) => void calls.push(`destroy-sync ${name}`),
    close: async () => void calls.push('close'),
  };
  return { conn, calls, setActive: (a: boolean) => (active = a) };
}

function domainHost() {
  const host = fakeHost();
  const clock = fakeClock();
  let alive = true;
  host.files.set('/state/cloudlet-a.pid', '4242\n');
  host.files.set('/log/cloudlet-a.log', 'qemu: terminating on signal 15\n');
  const deps = {
    ...(host.deps as Required<typeof host.deps>),
    clock: clock.clock,
    stateDir: '/state',
    logDir: '/log',
    processAlive: (pid: number) => pid === 4242 && alive,
  } satisfies DomainHostDeps;
  return { host, clock, deps, die: () => (alive = false) };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('attachDomainProcess', () => {
  it("reads QEMU's pid from libvirt's pid file and starts a watchdog on it for the run folder", async () => {
    const { host, deps } = domainHost();
    const { conn } = fakeConnection();
    const proc = await attachDomainProcess(deps, conn, 'cloudlet-a', '/fake/run9', true);
    expect(proc.pid).toBe(4242);
    expect(host.watchdogs).toHaveLength(1);
    expect(host.watchdogs[0]?.args.slice(2)).toEqual(['cloudlet-watchdog', '4242', '/fake/run9', 'remove']);
    expect(host.tracked.size).toBe(1);
  });

  it('notices QEMU gone by its pid, then reports the domain log as stderr and releases the watchdog', async () => {
    const { host, clock, deps, die } = domainHost();
    const { conn, setActive } = fakeConnection();
    const proc = await attachDomainProcess(deps, conn, 'cloudlet-a', '/fake/run9', true);
    die();
    setActive(false);
    clock.advance(100);
    await flush();
    clock.advance(100);
    const exit = await proc.exited;
    expect(exit.stderr).toContain('terminating on signal 15');
    expect(proc.exit()).toBe(exit);
    expect(host.watchdogs[0]?.stdinText()).toBe('release\n');
    expect(host.tracked.size).toBe(0);
  });

  it('kill() destroys the domain once; the exit hook destroys it synchronously', async () => {
    const { host, deps } = domainHost();
    const { conn, calls } = fakeConnection();
    const proc = await attachDomainProcess(deps, conn, 'cloudlet-a', '/fake/run9', false);
    proc.kill('SIGKILL');
    proc.kill('SIGKILL');
    await flush();
    expect(calls).toEqual(['destroy cloudlet-a']);
    for (const entry of host.tracked) entry.kill();
    expect(calls).toEqual(['destroy cloudlet-a', 'destroy-sync cloudlet-a']);
    expect(host.watchdogs[0]?.args.at(-1)).toBe('keep');
  });

  it('detach() drops the exit hook and the watchdog, closes the connection and never destroys the domain', async () => {
    const { host, clock, deps } = domainHost();
    const { conn, calls } = fakeConnection();
    const proc = await attachDomainProcess(deps, conn, 'cloudlet-a', '/fake/run9', true);
    proc.detach();
    await flush();
    expect(proc.isDetached()).toBe(true);
    expect(host.tracked.size).toBe(0);
    expect(host.watchdogs[0]?.stdinText()).toBe('release\n');
    proc.kill('SIGKILL');
    clock.advance(1000);
    await flush();
    expect(calls).toEqual(['close']);
    expect(clock.pendingTimers()).toBe(0); // no more polling of a process that is not ours
  });
});

describe('createLibvirtBackend', () => {
  it('refuses RAM mapped from a file (memory on demand needs the direct driver)', async () => {
    const backend = createLibvirtBackend({}, { openConnection: async () => fakeConnection().conn });
    await expect(
      backend.restore({ memoryMiB: 64 }, (async function* () {})(), { ramFile: '/mnt/memory/image' }),
    ).rejects.toThrow(/needs the direct QEMU driver/);
  });
});
