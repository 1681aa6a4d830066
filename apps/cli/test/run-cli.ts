// Runs the built CLI (`dist/cli.js`) as a user would, capturing its output and exit code.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openBaseRegistry } from '@cloudlet/base-registry';
import { type ResumeBaseOptions, type ResumedBase, resumeBase } from '@cloudlet/core';
import type { TinyVm } from '@cloudlet/test-vms';

export const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  script: string = cli,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { env: { ...process.env, ...env }, timeout: 300_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `cloudlet --home HOME base <tiny disk> ...` arguments that boot the tiny test VM, before the ready flags. */
export function tinyBaseArgs(home: string, tiny: TinyVm): string[] {
  return [
    '--home',
    home,
    'base',
    tiny.disk,
    '--memory',
    String(tiny.memoryMiB),
    '--kernel',
    tiny.kernel,
    '--initrd',
    tiny.initrd,
    '--append',
    tiny.append,
  ];
}

/** Resumes base `id` of the registry at `home`, runs `check` on it, then stops it and closes the registry. */
export async function withResumedBase(
  home: string,
  id: string,
  options: ResumeBaseOptions,
  check: (resumed: ResumedBase) => Promise<void>,
): Promise<void> {
  const registry = await openBaseRegistry({ home });
  try {
    const resumed = await resumeBase(registry.get(id), options);
    try {
      await check(resumed);
    } finally {
      await resumed.dispose();
    }
  } finally {
    registry.close();
  }
}

/** Resolves once `text` has appeared in `output.text` (fed by the child's stdout); rejects if it exits first. */
export function waitForOutput(
  child: ChildProcess,
  output: { text: string },
  text: string,
  timeoutMs = 120_000,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const poll = setInterval(() => {
      if (output.text.includes(text)) resolve();
      else if (child.exitCode !== null) reject(new Error(`exited before "${text}":\n${output.text}`));
      else if (Date.now() > deadline)
        reject(new Error(`no "${text}" after ${timeoutMs} ms:\n${output.text}`));
      else return;
      clearInterval(poll);
    }, 50);
  });
}

/** Starts the CLI in the background (as a long-running foreground command), its stdout and stderr in one text. */
export function spawnCli(args: readonly string[], env?: NodeJS.ProcessEnv) {
  const child = spawn(
    process.execPath,
    [cli, ...args],
    env === undefined ? {} : { env: { ...process.env, ...env } },
  );
  const output = { text: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output, exited, seen: (text: string) => waitForOutput(child, output, text) };
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Runs the CLI inside a real pseudo-terminal (util-linux `script`), as a user at a terminal would. */
export function runCliInTerminal(args: readonly string[]) {
  const command = [process.execPath, cli, ...args].map(shellQuote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const terminal = { text: '' };
  child.stdout.on('data', (chunk: Buffer) => (terminal.text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    terminal,
    exited,
    type: (keys: string) => child.stdin.write(keys),
    seen: (text: string) => waitForOutput(child, terminal, text),
  };
}
