// The libvirt backend on a remote host (qemu+ssh://) with a fake libvirt connection and a fake ssh shell: URI
// parsing, what is refused before anything starts, the shared-files check, and the clean-up when the guard
// never reports QEMU's pid. The real thing runs in conformance-libvirt-ssh.vm.test.ts.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLibvirtBackend, LibvirtBackendError, type LibvirtConnection } from '../src/index.js';
import { libvirtHostOf, sshOptions } from '../src/libvirt/libvirt-host.js';
import type { DomainGuardOptions, RemoteShell } from '../src/libvirt/ssh-host.js';

describe('libvirtHostOf', () => {
  it('tells this machine from an ssh host, reading the URI as libvirt does', () => {
    expect(libvirtHostOf('qemu:///system')).toEqual({ kind: 'local' });
    expect(libvirtHostOf('qemu+unix:///system?socket=/x')).toEqual({ kind: 'local' });
    expect(libvirtHostOf('qemu://localhost/system')).toEqual({ kind: 'local' });
    expect(
      libvirtHostOf('qemu+ssh://ops@edge-7:2222/system?keyfile=/k&command=/bin/myssh&no_verify=1'),
    ).toEqual({
      kind: 'ssh',
      target: {
        host: 'edge-7',
        user: 'ops',
        port: 2222,
        keyfile: '/k',
        command: '/bin/myssh',
        noVerify: true,
      },
    });
    expect(libvirtHostOf('qemu+nosuch:///system')).toEqual({ kind: 'local' }); // libvirt names the error
    expect(libvirtHostOf('qemu+ssh://localhost/system')).toMatchObject({ kind: 'ssh' });
    expect(libvirtHostOf('qemu+ssh://[fd00::7]/system')).toEqual({
      kind: 'ssh',
      target: { host: 'fd00::7', noVerify: false },
    });
  });

  it('refuses what it cannot reach with a shell, saying how to write the URI', () => {
    const refusal = (uri: string) => {
      try {
        libvirtHostOf(uri);
      } catch (error) {
        return error as LibvirtBackendError;
      }
      throw new Error(`${uri} accepted`);
    };
    expect(refusal('qemu+tcp://edge-7/system').message).toMatch(
      /the tcp transport is not supported.*qemu\+ssh:/,
    );
    expect(refusal('qemu+tls://edge-7/system').code).toBe('unsupported');
    expect(refusal('qemu://edge-7/system').message).toMatch(/edge-7 without ssh is not supported/);
    expect(refusal('xen:///system').message).toMatch(/not a QEMU URI/);
    expect(refusal('not a uri').code).toBe('connect');
    expect(refusal('qemu+ssh:///system').message).toMatch(/needs a host/);
  });

  it('passes the URI options to OpenSSH, never prompting', () => {
    const target = { host: 'edge-7', user: 'ops', port: 2222, keyfile: '/k', noVerify: true };
    expect(sshOptions(target)).toEqual([
      ...['-p', '2222', '-l', 'ops', '-i', '/k', '-o', 'StrictHostKeyChecking=no'],
      ...['-o', 'BatchMode=yes', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3', '-T'],
    ]);
  });
});

function fakeConnection() {
  const calls: string[] = [];
  const xmls: string[] = [];
  const conn: LibvirtConnection = {
    uri: 'qemu+ssh://edge-7/system',
    createDomain: async (xml) => {
      calls.push('create');
      xmls.push(xml);
    },
    destroyDomain: async (name) => void calls.push(`destroy ${name}`),
    saveDomain: async () => void calls.push('save'),
    restoreDomain: async () => void calls.push('restore'),
    listDomains: async () => [],
    isActive: async () => false,
    destroyDomainSync: () => {},
    close: async () => void calls.push('close'),
  };
  return { conn, calls, xmls };
}

/** A host that shares this machine's files (it reads the check file here) unless told what it lacks. */
function fakeShell(answer?: string) {
  const scripts: { script: string; args: readonly string[] }[] = [];
  const guards: DomainGuardOptions[] = [];
  let closed = 0;
  const shell: RemoteShell = {
    host: 'edge-7',
    run: async (script, args = []) => {
      scripts.push({ script, args });
      if (script.includes('mktemp')) {
        if (answer !== undefined) return `${answer}\n`;
        return `${await readFile(args[0] ?? '', 'utf8')}\n/h/cloudlet-host-abc\n`;
      }
      return '';
    },
    guard: (options) => {
      guards.push(options);
      const pid = Promise.reject(
        new LibvirtBackendError('operation', 'u', 'start', 'libvirt wrote no pid file'),
      );
      pid.catch(() => {});
      return { pid, ended: new Promise(() => {}), close: () => void closed++ };
    },
  };
  return { shell, scripts, guards, closed: () => closed };
}

const spec = {
  memoryMiB: 64,
  disks: [{ file: '/shared/disk.qcow2', format: 'qcow2' as const }],
  nics: [{ portForwards: [{ guestPort: 80, hostPort: 0 }] }],
};

describe('createLibvirtBackend on a remote host', () => {
  let parent: string;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'qd-remote-'));
  });
  afterEach(() => rm(parent, { recursive: true, force: true }));

  function backend(shell: RemoteShell, conn: LibvirtConnection) {
    let port = 41000;
    let opened = 0;
    const created = createLibvirtBackend(
      { uri: 'qemu+ssh://edge-7/system', hostRunDir: '/h' },
      {
        openConnection: async () => {
          opened += 1;
          return conn;
        },
        remoteShell: () => shell,
        pickFreePort: async () => port++,
      },
    );
    return { backend: created, opened: () => opened };
  }

  it('names its host, and refuses detachable VMs and UDP forwards before connecting', async () => {
    const { shell, scripts } = fakeShell();
    const { conn } = fakeConnection();
    const { backend: b, opened } = backend(shell, conn);
    expect(b.host).toBe('edge-7');
    await expect(b.launch(spec, { runDirParent: parent, detachable: true })).rejects.toThrow(
      /a VM on a remote host cannot be detached/,
    );
    const udp = {
      ...spec,
      nics: [{ portForwards: [{ guestPort: 53, hostPort: 0, proto: 'udp' as const }] }],
    };
    await expect(b.launch(udp, { runDirParent: parent })).rejects.toThrow(
      /UDP port forwards cannot be tunnelled/,
    );
    expect(opened()).toBe(0);
    expect(scripts).toEqual([]);
  });

  it('refuses a host that does not share the run folder, or lacks a disk: nothing started, nothing left', async () => {
    for (const [answer, message] of [
      ['not-shared', /the run folder .* is not on edge-7: libvirt on edge-7 opens the VM's files itself/],
      ['missing /shared/disk.qcow2', /\/shared\/disk\.qcow2 is not readable on edge-7/],
      ['someone-elses-token', /is another folder than here/],
    ] as const) {
      const { shell, guards } = fakeShell(answer);
      const { conn, calls } = fakeConnection();
      const error = await backend(shell, conn)
        .backend.launch(spec, { runDirParent: parent })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LibvirtBackendError);
      expect((error as LibvirtBackendError).code).toBe('unsupported');
      expect((error as Error).message).toMatch(message);
      expect(calls).toEqual(['close']);
      expect(guards).toEqual([]);
      expect(await readdir(parent)).toEqual([]);
    }
  });

  it("puts QEMU's sockets in the host folder, tunnels them and the forward, and cleans up when the guard fails", async () => {
    const { shell, scripts, guards, closed } = fakeShell();
    const { conn, calls, xmls } = fakeConnection();
    await expect(backend(shell, conn).backend.launch(spec, { runDirParent: parent })).rejects.toThrow(
      /no pid file/,
    );
    expect(xmls[0]).toContain('path=/h/cloudlet-host-abc/qmp.sock');
    expect(xmls[0]).toContain("<source mode='bind' path='/h/cloudlet-host-abc/serial.sock'/>");
    expect(xmls[0]).toContain('hostfwd=tcp:127.0.0.1:41000-:80');
    const guard = guards[0];
    expect(guard?.hostDir).toBe('/h/cloudlet-host-abc');
    expect(guard?.unixSockets.map(([, there]) => there)).toEqual([
      '/h/cloudlet-host-abc/qmp.sock',
      '/h/cloudlet-host-abc/serial.sock',
    ]);
    expect(guard?.unixSockets[0]?.[0]).toMatch(new RegExp(`^${parent}/.*/qmp\\.sock$`));
    expect(guard?.tcp).toEqual([{ localPort: 41001, hostAddress: '127.0.0.1', hostPort: 41000 }]);
    expect(closed()).toBe(1);
    expect(calls).toEqual(['create', expect.stringMatching(/^destroy cloudlet-/), 'close']);
    expect(scripts.at(-1)).toEqual({ script: 'rm -rf "$1"', args: ['/h/cloudlet-host-abc'] });
    expect(await readdir(parent)).toEqual([]);
  });
});
