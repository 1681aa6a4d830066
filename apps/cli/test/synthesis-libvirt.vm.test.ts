// The synthesis acceptance flow (trimmed) with `--backend libvirt`: a base made under libvirt on cloudlet A,
// exported to B; an overlay customized under libvirt (disk file, tmpfs file, running counter, httpd with a
// CGI page, a -redir forward); synthesized on B under libvirt and, with the same hardware, by the direct
// driver; every piece of state answers through the forwarded port; nothing is left (no domain, no QEMU, no
// files). A daemon that does not answer is one clear line.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LibvirtDaemons } from '@cloudlet/qemu-driver';
import { tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudletDomains, libvirtForTests } from '../../../packages/qemu-driver/test/libvirt-helpers.js';
import { qemuAlive } from '../../../packages/qemu-driver/test/vm-helpers.js';
import { cli, runCli, tinyBaseArgs, waitForOutput } from './run-cli.js';

const APP_SCRIPT = [
  'echo app-disk-file > /mnt/app.txt',
  'echo app-tmpfs-file > /tmp/app.txt',
  'mkdir -p /mnt/www/cgi-bin',
  `printf '#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n"\\necho "disk=$(cat /mnt/app.txt) tmpfs=$(cat /tmp/app.txt) counter=$(cat /tmp/counter)"\\n' > /mnt/www/cgi-bin/state`,
  'chmod +x /mnt/www/cgi-bin/state',
  '(n=0; while true; do n=$((n+1)); echo $n > /tmp/counter; sleep 0.2; done) &',
  'httpd -p 80 -h /mnt/www',
  'sync',
].join('\n');

async function appState(port: number) {
  const response = await fetch(`http://127.0.0.1:${port}/cgi-bin/state`, {
    signal: AbortSignal.timeout(10_000),
  });
  const fields = Object.fromEntries(
    (await response.text())
      .trim()
      .split(' ')
      .map((kv) => kv.split('=') as [string, string]),
  );
  return { disk: fields.disk, tmpfs: fields.tmpfs, counter: Number(fields.counter) };
}

async function expectAppRunning(port: number): Promise<void> {
  const first = await appState(port);
  expect(first).toMatchObject({ disk: 'app-disk-file', tmpfs: 'app-tmpfs-file' });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect((await appState(port)).counter).toBeGreaterThan(first.counter);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** `cloudlet synthesis` in the foreground until its VM answers, then Ctrl-C; resolves with the exit code. */
async function synthesizeAndStop(
  args: string[],
  port: number,
): Promise<{ code: number | null; pid: number }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { text: '' };
  child.stdout.on('data', (d: Buffer) => (output.text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output.text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitForOutput(child, output, 'press Ctrl-C');
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
