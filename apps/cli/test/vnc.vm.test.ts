// `cloudlet base --vnc` through a real pseudo-terminal: the VNC socket answers with an RFB greeting while the
// user prepares the VM, and Enter takes the snapshot.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runCliInTerminal, tinyBaseArgs } from './run-cli.js';

/** The first bytes a VNC server sends: "RFB 003.008\n". */
function rfbGreeting(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString('latin1'));
    });
    socket.once('error', reject);
  });
}

describe('cloudlet base --vnc', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-vnc-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('shows a VNC display on a unix socket; Enter takes the snapshot', async () => {
    const cli = runCliInTerminal([...tinyBaseArgs(join(work, 'home'), tinyVm()), '--vnc']);
    await cli.seen('press Enter here to snapshot');
    const socketPath = /VNC display on unix socket (\S+)/.exec(cli.terminal.text)?.[1] ?? '';
    expect(await rfbGreeting(socketPath)).toMatch(/^RFB 003\.00\d\n/);
    cli.type('\r');
    expect(await cli.exited).toBe(0);
    const id = /created base ([0-9a-f]{64})/.exec(cli.terminal.text)?.[1] ?? '';
    expect(id).toHaveLength(64);

    // An overlay of it synthesizes with its display: the VNC socket answers again.
    const home = join(work, 'home');
    await writeFile(join(work, 'ready.sh'), 'echo vnc-overlay > /tmp/mark\n');
    const overlay = join(work, 'vnc.zip');
    expect(
      (await runCli(['--home', home, 'overlay', id, '-o', overlay, '--script', join(work, 'ready.sh')])).code,
    ).toBe(0);
    const run = await runCli(['--home', home, 'synthesis', id, overlay, '--vnc', '--detach', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { workDir: string; endpoints: { vncSocket?: string } };
    try {
      expect(await rfbGreeting(result.endpoints.vncSocket ?? '')).toMatch(/^RFB 003\.00\d\n/);
    } finally {
      expect((await runCli(['--home', home, 'stop', result.workDir])).code).toBe(0);
    }
  });
});
