// The libvirt backend from the CLI and the server: the shared acceptance flow (synthesis-acceptance.ts) with
// every VM under libvirt, plus what only libvirt has: the backend recorded in the registry, an overlay made under
// libvirt synthesized by the direct driver, a held server session, connection errors, and no domain left behind
// by a SIGKILLed cloudlet.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createCloudletClient } from '@cloudlet/core';
import type { LibvirtDaemons } from '@cloudlet/qemu-driver';
import { until } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudletDomains, libvirtForTests } from '../../../packages/qemu-driver/test/libvirt-helpers.js';
import { qemuAlive } from '../../../packages/qemu-driver/test/vm-helpers.js';
import { startServer } from '../../server/test/server-process.js';
import { expectAppRunning } from './app-running.js';
import { runCli, spawnCli } from './run-cli.js';
import { synthesisAcceptance } from './synthesis-acceptance.js';

/** `cloudlet synthesis` in the foreground until its VM answers, then Ctrl-C; resolves with the exit code. */
async function synthesizeAndStop(
  args: string[],
  port: number,
): Promise<{ code: number | null; pid: number }> {
  const { child, output, exited, seen } = spawnCli(args);
  try {
    await seen('press Ctrl-C');
    const started = performance.now();
    await expectAppRunning(port);
    console.log(
      `${args.join(' ').slice(-40)}: app checked in ${((performance.now() - started) / 1000).toFixed(2)} s`,
    );
    console.log(
      output.text
        .split('\n')
        .filter((l) => /resum|total|second/i.test(l))
        .join('\n'),
    );
  } finally {
    child.kill('SIGINT');
  }
  const pid = Number(/pid (\d+)/.exec(output.text)?.[1] ?? 0);
  return { code: await exited, pid };
}

describe('cloudlet synthesis --backend libvirt (two cloudlets)', () => {
  let daemons: LibvirtDaemons;
  const libvirt = () => ['--backend', 'libvirt', '--connect', daemons.uri];

  beforeAll(async () => {
    daemons = await libvirtForTests();
  });
  afterAll(async () => {
    await daemons?.stop();
  });

  // The whole acceptance flow (synthesis.vm.test.ts's) with every VM under libvirt.
  const ctx = synthesisAcceptance({
    backend: libvirt,
    // libvirt drops a domain a moment after its QEMU is gone.
    noLeftovers: () =>
      until(
        async () => (await cloudletDomains(daemons.uri, ctx.work)).length === 0,
        'no libvirt domain left',
        5000,
      ),
  });

  it('the registry records that libvirt made the base, on both cloudlets', async () => {
    for (const home of [ctx.homeA, ctx.homeB]) {
      const manifest = JSON.parse(await readFile(join(home, 'bases', ctx.id, 'base.json'), 'utf8')) as {
        hostFacts: { backend?: string };
      };
      expect(manifest.hostFacts.backend).toBe('libvirt');
    }
  });

  it('the same overlay synthesizes with the direct driver (same hardware description)', async () => {
    const { homeB, id, overlay, port } = ctx;
    const { code } = await synthesizeAndStop(['--home', homeB, 'synthesis', id, overlay], port);
    expect(code).toBe(0);
    expect(await readdir(join(homeB, 'synthesis')).catch(() => [])).toEqual([]);
  });

  it('cloudlet-server --backend libvirt: an uploaded overlay runs in a held session; closing leaves no domain', async () => {
    const { homeB, overlay } = ctx;
    const server = await startServer(['--home', homeB, ...libvirt()]);
    try {
      const client = createCloudletClient({ server: server.url });
      const session = await client.synthesize({ overlay, ports: [{ guestPort: 80, proto: 'tcp' }] });
      const hostPort = session.endpoints?.portForwards.find((f) => f.guestPort === 80)?.hostPort ?? 0;
      await expectAppRunning(hostPort);
      expect(await cloudletDomains(daemons.uri, ctx.work)).toHaveLength(1);
      await client.closeSession(session.id);
      expect(await cloudletDomains(daemons.uri, ctx.work)).toEqual([]);
    } finally {
      await server.stop();
    }
    expect(await readdir(join(homeB, 'sessions')).catch(() => [])).toEqual([]);
  });

  it('a daemon that does not answer, or a mistaken URI: one clear line, nothing left', async () => {
    const { homeB, id, overlay } = ctx;
    const uri = 'qemu:///system?socket=/nonexistent/libvirt-sock';
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
    expect(run.stderr).toMatch(
      /cannot connect to libvirt at qemu:\/\/\/system\?socket=\/nonexistent.*is libvirtd running/,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(join(homeB, 'synthesis')).catch(() => [])).toEqual([]);
    const usage = await runCli(['--home', homeB, 'synthesis', id, overlay, '--connect', uri]);
    expect(usage.stderr).toMatch(/--connect needs --backend libvirt/);
    const remote = ['--backend', 'libvirt', '--connect', 'qemu://edge-7/system'];
    const refused = await runCli(['--home', homeB, 'synthesis', id, overlay, ...remote]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /edge-7 without ssh is not supported: a remote host is reached as qemu\+ssh:/,
    );
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  it('a SIGKILLed cloudlet leaves no domain: the watchdog kills its QEMU and libvirt drops the domain', async () => {
    const { homeB, id, overlay, port } = ctx;
    const { child, output, seen } = spawnCli(['--home', homeB, 'synthesis', id, overlay, ...libvirt()]);
    await seen('press Ctrl-C');
    await expectAppRunning(port);
    expect(await cloudletDomains(daemons.uri, ctx.work)).toHaveLength(1);
    const pid = Number(/pid (\d+)/.exec(output.text)?.[1] ?? 0);
    child.kill('SIGKILL'); // no exit hook runs
    await until(
      async () => (await cloudletDomains(daemons.uri, ctx.work)).length === 0,
      'the domain gone',
      10_000,
    );
    if (pid > 0) expect(qemuAlive(pid)).toBe(false);
    await rm(join(homeB, 'synthesis'), { recursive: true, force: true }); // the dead CLI's VM folder
  });
});
