// Runs the built cloudlet-server (dist/main.js) as a user would, on port 0, and learns its port from the log.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const serverMain = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly output: { text: string };
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServer(args: readonly string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, [serverMain, '-p', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { text: '' };
  child.stdout?.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const deadline = Date.now() + 30_000;
    const poll = setInterval(() => {
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(output.text);
      if (match !== null) resolve(Number(match[1]));
      else if (child.exitCode !== null) reject(new Error(`server exited:\n${output.text}`));
      else if (Date.now() > deadline) reject(new Error(`server did not start:\n${output.text}`));
      else return;
      clearInterval(poll);
    }, 25);
  });
  return {
    child,
    pid: child.pid ?? 0,
    port,
    url: `http://127.0.0.1:${port}`,
    output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      readlinkSync(`/proc/${pid}/fd/${fd}`);
      return true;
    } catch {
      return false;
    }
  }).length;
}

export function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? Number.NaN);
}
