// `cloudlet base --vnc` through a real pseudo-terminal: the VNC socket answers with an RFB greeting while the
// user prepares the VM, and Enter takes the snapshot.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliInTerminal, tinyBaseArgs } from './run-cli.js';

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
    expect(cli.terminal.text).toMatch(/created base [0-9a-f]{64}/);
  });
});
