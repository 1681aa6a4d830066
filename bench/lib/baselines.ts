// B1 (naive) and B2 (Elijah's baseline), computed on the first run's custom VM.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Baseline } from './results.js';

const sh = promisify(execFile);
const size = async (file: string) => (await stat(file)).size;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/**
 * B1: the custom VM's qcow2 (its own clusters over the base) and its full memory snapshot, each `xz -6`.
 * B2: `xdelta3 -e -s` of the whole raw disk and of the memory snapshot against the base's, then `xz -6`.
 * The two run side by side (two cores); each `xz` is single-threaded.
 */
export async function computeBaselines(p: {
  work: string;
  qcow2: string;
  snapshot: string;
  baseDisk: string;
  baseMemory: string;
}): Promise<{ B1: Baseline; B2: Baseline }> {
  const f = (name: string) => join(p.work, name);
  const xz = (input: string, output: string) => sh('bash', ['-c', `xz -6 -T1 -c '${input}' > '${output}'`]);
  const b1 = async (): Promise<Baseline> => {
    const seconds = await timed(() =>
      Promise.all([xz(p.qcow2, f('b1-disk.xz')), xz(p.snapshot, f('b1-mem.xz'))]),
    );
    const diskBytes = await size(f('b1-disk.xz'));
    const memoryBytes = await size(f('b1-mem.xz'));
    return { bytes: diskBytes + memoryBytes, diskBytes, memoryBytes, seconds };
  };
  const b2 = async (): Promise<Baseline> => {
    await sh('qemu-img', ['convert', '-O', 'raw', p.qcow2, f('custom.raw')]);
    const seconds = await timed(async () => {
      await sh('xdelta3', ['-e', '-f', '-s', p.baseDisk, f('custom.raw'), f('b2-disk.vcdiff')]);
      await sh('xdelta3', ['-e', '-f', '-s', p.baseMemory, p.snapshot, f('b2-mem.vcdiff')]);
      await Promise.all([xz(f('b2-disk.vcdiff'), f('b2-disk.xz')), xz(f('b2-mem.vcdiff'), f('b2-mem.xz'))]);
    });
    const diskBytes = await size(f('b2-disk.xz'));
    const memoryBytes = await size(f('b2-mem.xz'));
    return { bytes: diskBytes + memoryBytes, diskBytes, memoryBytes, seconds };
  };
  const [B1, B2] = await Promise.all([b1(), b2()]);
  return { B1, B2 };
}
