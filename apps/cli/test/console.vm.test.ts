// `cloudlet base --ready-when REGEX --console` driven through a real pseudo-terminal: the user types into the
// guest's console, presses Ctrl-], and what was typed is in the base.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliInTerminal, tinyBaseArgs, withResumedBase } from './run-cli.js';

describe('cloudlet base --console', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-console-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('attaches the serial console to the terminal; Ctrl-] takes the snapshot', async () => {
    const home = join(work, 'home');
    const cli = runCliInTerminal([...tinyBaseArgs(home, tinyVm()), '--ready-when', 'vm# ', '--console']);
    await cli.seen('Press Ctrl-] when the VM is ready');
    cli.type('export CONSOLE_MARK=typed7; echo "mark-$CONSOLE_MARK"\r');
    await cli.seen('mark-typed7');
    cli.type('\x1d');
    expect(await cli.exited).toBe(0);
    const id = /created base ([0-9a-f]{64})/.exec(cli.terminal.text)?.[1] ?? '';

    await withResumedBase(home, id, {}, async (resumed) => {
      expect(await resumed.vm.console.run('echo $CONSOLE_MARK')).toBe('typed7');
    });
  });
});
