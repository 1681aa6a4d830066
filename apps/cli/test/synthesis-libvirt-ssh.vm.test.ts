// The CLI with libvirt on a "remote" host: every VM through qemu+ssh:// to a loopback sshd (the local libvirtd
// reached as a remote one is). Base on cloudlet A, exported to B; an overlay customized on A; synthesis on B from
// an HTTP URL; the app answers both on the host's forwarded port and here through the ssh tunnel the CLI names.
// What cannot work remotely is refused with the reason; a SIGKILLed cloudlet leaves nothing on the host.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createCloudletClient } from '@cloudlet/core';
import type { LibvirtDaemons } from '@cloudlet/qemu-driver';
import { freePort, qemuMentioning, serveFile, until } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudletDomains, libvirtForTests } from '../../../packages/qemu-driver/test/libvirt-helpers.js';
import { type LoopbackSsh, startLoopbackSsh } from '../../../packages/qemu-driver/test/ssh-helpers.js';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { startServer } from '../../server/test/server-process.js';
import { expectAppRunning } from './app-running.js';
import { runCli, spawnCli } from './run-cli.js';
import { twoCloudlets } from './synthesis-acceptance.js';

/** The host's socket folders (the backend's default parent, /tmp on the host, whatever TMPDIR says here). */
const hostFolders = async () => (await readdir('/tmp')).filter((n) => n.startsWith('cloudlet-host-'));

describe('cloudlet --backend libvirt --connect qemu+ssh:// (a remote host)', () => {
  let daemons: LibvirtDaemons;
  let ssh: LoopbackSsh;
  let foldersBefore: string[];
  const remote = () => ['--backend', 'libvirt', '--connect', ssh.uri];

  beforeAll(async () => {
    daemons = await libvirtForTests();
    ssh = await startLoopbackSsh();
    foldersBefore = await hostFolders();
  });
  afterAll(async () => {
    await ssh?.stop();
    await daemons?.stop();
  });
  // Registered after the hook above: the cloudlets are made over ssh once sshd runs.
  const ctx = twoCloudlets(remote, 'cli-ssh-');
  let work: string;
  let homeB: string;
  let id: string;
  let port: number;
  let overlay: string;
  beforeAll(() => {
    ({ work, homeB, id, port, overlay } = ctx); // the tests below read these
  });
  const noLeftovers = async () => {
    expect(qemuMentioning(homeB)).toEqual([]);
    expect(await readdir(join(homeB, 'synthesis')).catch(() => [])).toEqual([]);
    await until(
      async () => (await cloudletDomains(daemons.uri, work)).length === 0,
      'no libvirt domain left',
      5000,
    );
    await until(
      async () => (await hostFolders()).every((n) => foldersBefore.includes(n)),
      "the host's socket folder removed",
      5000,
    );
  };

  it('synthesizes from an HTTP URL: the app answers on the host and here through the tunnel; Ctrl-C leaves nothing', async () => {
    const server = await serveFile(overlay);
    const { child, output, exited, seen } = spawnCli([
      '--home',
      homeB,
      'synthesis',
      id,
      server.url,
      ...remote(),
    ]);
    try {
      await seen('press Ctrl-C');
      console.log(/synthesized on base .*/.exec(output.text)?.[0]);
      const tunnel = new RegExp(
        `tcp 127\\.0\\.0\\.1:${port} -> guest 80 \\(on the VM's host; here 127\\.0\\.0\\.1:(\\d+) by ssh\\)`,
      );
      const local = Number(tunnel.exec(output.text)?.[1] ?? 0);
      expect(local, output.text).toBeGreaterThan(0);
      expect(local).not.toBe(port);
      await expectAppRunning(local); // through the ssh tunnel
      await expectAppRunning(port); // on the host itself
      expect(server.requests.some((r) => r.range?.startsWith('bytes=') === true)).toBe(true);
    } finally {
      child.kill('SIGINT');
      await server.close();
    }
    expect(await exited).toBe(0);
    await noLeftovers();
  });

  it('--detach and --early-start are refused with the reason, nothing started', async () => {
    for (const [flag, reason] of [
      ['--detach', /a detached VM outlives its ssh tunnels: not with a VM on the remote host 127\.0\.0\.1/],
      ['--early-start', /early start serves the disk from this process: not with a VM on the remote host/],
    ] as const) {
      const run = await runCli(['--home', homeB, 'synthesis', id, overlay, flag, ...remote()]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(reason);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
    await noLeftovers();
  });

  it('a SIGKILLed cloudlet: the guard on the host kills its QEMU and libvirt drops the domain', async () => {
    const ownTmp = testTempDir('cli-ssh-kill-'); // other test files' VMs make run folders in the shared one
    const { child, output, seen } = spawnCli(['--home', homeB, 'synthesis', id, overlay, ...remote()], {
      TMPDIR: ownTmp,
    });
    await seen('press Ctrl-C');
    await expectAppRunning(port);
    expect(await cloudletDomains(daemons.uri, work)).toHaveLength(1);
    child.kill('SIGKILL'); // no exit hook runs: only the ssh session's end tells the host
    await until(
      async () => (await cloudletDomains(daemons.uri, work)).length === 0,
      'the domain gone',
      15_000,
    );
    expect(qemuMentioning(homeB)).toEqual([]);
    expect(output.text).toContain('press Ctrl-C');
    await rm(join(homeB, 'synthesis'), { recursive: true, force: true }); // the dead CLI's VM folder
    // A SIGKILLed Node runs no code: its local run folder (the tunnelled sockets) stays, as with the qemu backend.
    expect((await readdir(ownTmp)).filter((n) => n.startsWith('cloudlet-vm-'))).toHaveLength(1);
    await until(
      async () => (await hostFolders()).every((n) => foldersBefore.includes(n)),
      "the host's socket folder removed",
      5000,
    );
  });

  it('cloudlet-server with VMs on the host: an uploaded overlay runs in a held session; closing leaves nothing', async () => {
    const server = await startServer(['--home', homeB, ...remote()]);
    try {
      const client = createCloudletClient({ server: server.url });
      const session = await client.synthesize({ overlay, ports: [{ guestPort: 80, proto: 'tcp' }] });
      const forward = session.endpoints?.portForwards.find((f) => f.guestPort === 80);
      await expectAppRunning(forward?.hostPort ?? 0);
      expect(await cloudletDomains(daemons.uri, work)).toHaveLength(1);
      await client.closeSession(session.id);
      expect(await cloudletDomains(daemons.uri, work)).toEqual([]);
    } finally {
      await server.stop();
    }
    expect(await readdir(join(homeB, 'sessions')).catch(() => [])).toEqual([]);
    await noLeftovers();
  });

  it('an unreachable host or another transport: one clear line, nothing left', async () => {
    const dead = await freePort();
    const cases = [
      [
        `qemu+ssh://root@127.0.0.1:${dead}/system?no_verify=1`,
        /cannot connect to libvirt at qemu\+ssh:.*refused/i,
      ],
      [
        'qemu+tcp://edge-7/system',
        /the tcp transport is not supported: a remote host is reached as qemu\+ssh:/,
      ],
    ] as const;
    for (const [uri, message] of cases) {
      const run = await runCli([
        '--home',
        homeB,
        'synthesis',
        id,
        overlay,
        '--backend',
        'libvirt',
        '--connect',
        uri,
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
    await noLeftovers();
  });
});
