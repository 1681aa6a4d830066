// The benchmark's base VMs: the test-vms recipes, built (or found cached) and described for createBase().
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BaseName } from './workloads.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface BaseVmFiles {
  kernel: string;
  initrd: string;
  disk: string;
  append: string;
  memoryMiB: number;
}

export async function buildVm(name: BaseName): Promise<BaseVmFiles> {
  await promisify(execFile)('bash', [join(root, `test-vms/${name}/build.sh`)]);
  const out = join(root, `test-vms/${name}/out`);
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
    append: string;
    memoryMiB?: number;
  };
  return {
    kernel: join(out, 'vmlinuz'),
    initrd: join(out, 'initramfs.cpio.gz'),
    disk: join(out, 'disk.raw'),
    append: manifest.append,
    memoryMiB: manifest.memoryMiB ?? 128,
  };
}
