import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCloudletClient } from '@cloudlet/core';
import type { LibvirtDaemons } from '@cloudlet/qemu-driver';
import { APP_SCRIPT, freePort, tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudletDomains, libvirtForTests } from '../../../packages/qemu-driver/test/libvirt-helpers.js';
import { qemuAlive } from '../../../packages/qemu-driver/test/vm-helpers.js';
import { startServer } from '../../server/test/server-process.js';
import { expectAppRunning } from './app-running.js';
import { runCli, spawnCli, tinyBaseArgs } from './run-cli.js';

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
  let work: string;
  let homeA: string;
  let homeB: string;
  let id: string;
  let port: number;
  let overlay: string;
  const libvirt = () => ['--backend', 'libvirt', '--connect', daemons.uri];

  beforeAll(async () => {
    daemons = await libvirtForTests();
    work = await mkdtemp(join(tmpdir(), 'cli-libvirt-'));
    homeA = join(work, 'a');
    homeB = join(work, 'b');
    await writeFile(join(work, 'ready.sh'), 'true\n');
    await writeFile(join(work, 'app.sh'), APP_SCRIPT);
    const made = await runCli([
      ...tinyBaseArgs(homeA, tinyVm()),
      ...libvirt(),
      '--script',
      join(work, 'ready.sh'),
    ]);
    id = /created base ([0-9a-f]{64})/.exec(made.stdout)?.[1] ?? '';
    expect(id, made.stderr).toHaveLength(64);
    expect((await runCli(['--home', homeA, 'export-base', id, join(work, 'base.zip')])).code).toBe(0);
    expect((await runCli(['--home', homeB, 'import-base', join(work, 'base.zip')])).code).toBe(0);
    port = await freePort();
    overlay = join(work, 'app.zip');
    const args = [
      '--home',
      homeA,
      'overlay',
      id,
      '-o',
      overlay,
      ...libvirt(),
      '--script',
      join(work, 'app.sh'),
    ];
    const custom = await runCli([...args, '--', '-redir', `tcp:${port}::80`]);
    expect(custom.code, custom.stderr).toBe(0);
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
    await daemons?.stop();
  });

  it('the registry records that libvirt made the base, on both cloudlets', async () => {
    for (const home of [homeA, homeB]) {
      const manifest = JSON.parse(await readFile(join(home, 'bases', id, 'base.json'), 'utf8')) as {
        hostFacts: { backend?: string };
      };
      expect(manifest.hostFacts.backend).toBe('libvirt');
    }
  });

  it('synthesizes under libvirt: every piece of state answers; Ctrl-C leaves no domain, QEMU or files', async () => {
    const { code, pid } = await synthesizeAndStop(
      ['--home', homeB, 'synthesis', id, overlay, ...libvirt()],
      port,
    );
    expect(code).toBe(0);
    if (pid > 0) expect(qemuAlive(pid)).toBe(false);
    expect(await cloudletDomains(daemons.uri)).toEqual([]);
    expect(await readdir(join(homeB, 'synthesis')).catch(() => [])).toEqual([]);
  });

  it('the same overlay synthesizes with the direct driver (same hardware description)', async () => {
    const { code } = await synthesizeAndStop(['--home', homeB, 'synthesis', id, overlay], port);
    expect(code).toBe(0);
    expect(await readdir(join(homeB, 'synthesis')).catch(() => [])).toEqual([]);
  });

  it('cloudlet-server --backend libvirt: an uploaded overlay runs in a held session; closing leaves no domain', async () => {
    const server = await startServer(['--home', homeB, ...libvirt()]);
    try {
      const client = createCloudletClient({ server: server.url });
      const session = await client.synthesize({ overlay, ports: [{ guestPort: 80, proto: 'tcp' }] });
      const hostPort = session.endpoints?.portForwards.find((f) => f.guestPort === 80)?.hostPort ?? 0;
      await expectAppRunning(hostPort);
      expect(await cloudletDomains(daemons.uri)).toHaveLength(1);
      await client.closeSession(session.id);
      expect(await cloudletDomains(daemons.uri)).toEqual([]);
    } finally {
      await server.stop();
    }
    expect(await readdir(join(homeB, 'sessions')).catch(() => [])).toEqual([]);
  });

  it('a daemon that does not answer, or a mistaken URI: one clear line, nothing left', async () => {
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
  });
});
