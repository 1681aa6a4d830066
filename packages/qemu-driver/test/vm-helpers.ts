// Shared by the real-QEMU tests (`*.vm.test.ts`).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createQemuDriver, type QemuDriver } from '../src/index.js';
import { defaultDeps } from '../src/node-deps.js';

/**
 * True while `pid` is a live QEMU. A zombie counts as gone: in this container PID 1 does not always reap
 * orphans, so a QEMU killed after its parent died can linger as <defunct> without running.
 */
export function qemuAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return state !== 'Z' && state !== 'X' && cmdline.includes('qemu-system');
  } catch {
    return false;
  }
}

export async function waitUntilGone(pid: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (qemuAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** A real driver that also records every QEMU pid and run folder it creates. */
export function recordingDriver(): { driver: QemuDriver; pids: number[]; runDirs: string[] } {
  const real = defaultDeps();
  const pids: number[] = [];
  const runDirs: string[] = [];
  const driver = createQemuDriver({
    spawn: (command, args, options) => {
      const child = real.spawn(command, args, options);
      if (child.pid !== undefined && command !== real.shBinary) pids.push(child.pid); // not watchdogs
      return child;
    },
    makeRunDir: async (parent) => {
      const dir = await real.makeRunDir(parent);
      runDirs.push(dir);
      return dir;
    },
  });
  return { driver, pids, runDirs };
}

/** Runs a fixture script in a child Node (with tsx) and resolves with its first stdout line, parsed. */
export function startFixture(script: string, args: string[] = []) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL(`./fixtures/${script}`, import.meta.url).pathname, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const firstLine = new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const newline = out.indexOf('\n');
      if (newline >= 0) resolve(JSON.parse(out.slice(0, newline)) as Record<string, unknown>);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`fixture exited (${code ?? signal}) early: ${stderr}`)),
    );
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, firstLine, exited, stderr: () => stderr };
}
