// `cloudlet base --ready-when REGEX --console` driven through a real pseudo-terminal (util-linux `script`):
// the user types into the guest's console, presses Ctrl-], and what was typed is in the base.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tinyBaseArgs, withResumedBase } from './run-cli.js';

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

describe('cloudlet base --console', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-console-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('attaches the serial console to the terminal; Ctrl-] takes the snapshot', async () => {
    const tiny = tinyVm();
    const home = join(work, 'home');
    const command = [process.execPath, cli, ...tinyBaseArgs(home, tiny), '--ready-when', 'vm# ', '--console']
      .map(quote)
      .join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    /** Resolves once `text` has appeared in the terminal output. */
    const seen = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 120_000;
        const poll = setInterval(() => {
          if (output.includes(text)) resolve();
          else if (child.exitCode !== null) reject(new Error(`exited before "${text}":\n${output}`));
          else if (Date.now() > deadline) reject(new Error(`no "${text}" after 120 s:\n${output}`));
          else return;
          clearInterval(poll);
        }, 50);
      });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    await seen('Press Ctrl-] when the VM is ready');
    child.stdin.write('export CONSOLE_MARK=typed7; echo "mark-$CONSOLE_MARK"\r');
    await seen('mark-typed7');
    child.stdin.write('\x1d');
    expect(await exited).toBe(0);
    const id = /created base ([0-9a-f]{64})/.exec(output)?.[1];
    expect(id).toBeDefined();

    await withResumedBase(home, id ?? '', {}, async (resumed) => {
      expect(await resumed.vm.console.run('echo $CONSOLE_MARK')).toBe('typed7');
    });
  });
});
