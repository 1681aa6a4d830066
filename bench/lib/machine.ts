// Machine and version facts recorded with every run.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { promisify } from 'node:util';

const sh = promisify(execFile);

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await sh(cmd, args);
    return (stdout || stderr).split('\n')[0]?.trim() ?? '?';
  } catch (e) {
    const out = (e as { stdout?: string; stderr?: string }).stderr ?? '';
    return out.split('\n')[0]?.trim() || '?';
  }
}

export function machine() {
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? '?',
    ramBytes: totalmem(),
    kernel: release(),
    loadAverage: loadavg(),
  };
}

const pkgVersion = async (dir: string) =>
  (
    JSON.parse(await readFile(new URL(`../../${dir}/package.json`, import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

export async function versions(): Promise<Record<string, string>> {
  const qemu = (await firstLine('qemu-system-x86_64', ['--version'])).replace(/^QEMU emulator version /, '');
  const xz = (await firstLine('xz', ['--version'])).replace(/^xz \(XZ Utils\) /, '');
  const xdelta = (await firstLine('xdelta3', ['-V'])).replace(/^Xdelta version /, '').replace(/,.*$/, '');
  const out: Record<string, string> = { node: process.version, qemu, xz, xdelta3: xdelta };
  for (const p of ['core', 'delta', 'overlay-format', 'qemu-driver', 'base-registry'])
    out[`@cloudlet/${p}`] = await pkgVersion(`packages/${p}`);
  return out;
}
