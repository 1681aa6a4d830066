// Overlay size on the tiny VM against baselines measured in the same run (docs/benchmarks.md):
//   B1 "naive": the qcow2 overlay file and the full memory snapshot, each `xz -6`;
//   B2 "Elijah's baseline": xdelta3 of the whole disk image and of the memory snapshot against the base's, then xz;
//   ours: `createOverlay` (dedup + delta + zstd 3), and variants: --delta none, zstd 19, xz 6.
// Each variant re-runs the same scripted workload on the same base, so the custom VMs differ slightly
// (timers, random heap); B1 and B2 are computed on the first one.
// Run: pnpm exec tsx bench/overlay-size.ts   (prints JSON; needs the tiny VM: bash test-vms/tiny/build.sh)
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openBaseRegistry } from '@cloudlet/base-registry';
import { createBase, createOverlay, type DeltaChoice, runGuestScript, waitForShell } from '@cloudlet/core';
import { tinyVm } from '@cloudlet/test-vms';

const sh = promisify(execFile);
const bash = (script: string) => sh('bash', ['-c', script], { maxBuffer: 1 << 20 });

/** A "server app" install: a new binary, compressible data files, a copy of a base file, a warm heap, httpd. */
const WORKLOAD = [
  'mkdir -p /mnt/app && cp /bin/busybox /mnt/app/server',
  'seq 1 400000 > /mnt/app/data.txt',
  'cp /mnt/hello.txt /mnt/app/hello.txt',
  'dd if=/dev/urandom of=/tmp/heap.bin bs=1024 count=512 2>/dev/null',
  'echo app > /mnt/www/state.html && httpd -p 80 -h /mnt/www',
  'dd if=/dev/zero of=/mnt/scratch bs=1M count=8 2>/dev/null && rm /mnt/scratch && fstrim /mnt',
  'sync',
].join('\n');

const size = async (file: string) => (await stat(file)).size;

async function main() {
  const tiny = tinyVm();
  const work = await mkdtemp(join(tmpdir(), 'bench-overlay-'));
  const registry = await openBaseRegistry({ home: join(work, 'home') });
  try {
    const { base } = await createBase({
      registry,
      disk: tiny.disk,
      memoryMiB: tiny.memoryMiB,
      kernel: tiny.kernel,
      initrd: tiny.initrd,
      append: tiny.append,
      prepare: (vm) => waitForShell(vm),
    });
    const runs: Record<string, { bytes: number; seconds: number }> = {};
    let custom = '';
    const variants: { name: string; delta: DeltaChoice; codec: 'zstd' | 'xz'; level?: number }[] = [
      { name: 'ours (delta auto)', delta: 'auto', codec: 'zstd' },
      { name: 'ours (delta none)', delta: 'none', codec: 'zstd' },
      { name: 'ours (zstd 19)', delta: 'auto', codec: 'zstd', level: 19 },
      { name: 'ours (xz 6)', delta: 'auto', codec: 'xz', level: 6 },
    ];
    for (const v of variants) {
      const first = v === variants[0];
      const result = await createOverlay({
        registry,
        base: base.id,
        output: join(work, 'overlay.zip'),
        delta: v.delta,
        codec: v.codec,
        ...(v.level === undefined ? {} : { level: v.level }),
        prepare: (vm) => runGuestScript(vm, WORKLOAD),
        ...(first
          ? { memorySnapshotCopy: join(work, 'custom.snap'), keepWorkDir: (dir: string) => (custom = dir) }
          : {}),
      });
      runs[v.name] = { bytes: result.summary.bytes, seconds: result.seconds };
    }
    const qcow2 = join(custom, 'disk.qcow2');
    await sh('qemu-img', ['convert', '-O', 'raw', qcow2, join(work, 'custom.raw')]);
    const t1 = performance.now();
    await bash(
      `xz -6 -T1 -c '${qcow2}' > '${work}/b1-disk.xz' && xz -6 -T1 -c '${work}/custom.snap' > '${work}/b1-mem.xz'`,
    );
    const b1 = {
      bytes: (await size(`${work}/b1-disk.xz`)) + (await size(`${work}/b1-mem.xz`)),
      seconds: (performance.now() - t1) / 1000,
    };
    const t2 = performance.now();
    await bash(
      `xdelta3 -e -f -s '${base.paths.disk}' '${work}/custom.raw' '${work}/b2-disk.vcdiff' && ` +
        `xdelta3 -e -f -s '${base.paths.memory}' '${work}/custom.snap' '${work}/b2-mem.vcdiff' && ` +
        `xz -6 -T1 -k '${work}/b2-disk.vcdiff' '${work}/b2-mem.vcdiff'`,
    );
    const b2 = {
      bytes: (await size(`${work}/b2-disk.vcdiff.xz`)) + (await size(`${work}/b2-mem.vcdiff.xz`)),
      seconds: (performance.now() - t2) / 1000,
    };
    const ours = runs['ours (delta auto)']?.bytes ?? Number.NaN;
    console.log(
      JSON.stringify(
        {
          machine: { node: process.version, date: new Date().toISOString() },
          workload:
            'tiny VM, 128 MiB: new 2 MB binary, 2.7 MB text, a base-file copy, 512 KiB random heap, httpd, trimmed scratch file',
          bytes: {
            B1: b1.bytes,
            B2: b2.bytes,
            ...Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.bytes])),
          },
          seconds: {
            B1: b1.seconds,
            B2: b2.seconds,
            ...Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.seconds])),
          },
          ratios: { oursOverB1: +(ours / b1.bytes).toFixed(3), oursOverB2: +(ours / b2.bytes).toFixed(3) },
        },
        null,
        2,
      ),
    );
  } finally {
    registry.close();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
