// How synthesis should write the VM's disk: the pure-Node qcow2 writer (createQcow2Writer) against QEMU's own
// tools. Run: pnpm exec tsx bench/qcow2-writer.ts [chunks]  (prints JSON; MB = 10^6 bytes, median of 3).
//  (a) createQcow2Writer: 4 KiB chunks in a random order, 32 writes in flight, closed (metadata + fsync);
//  (b) qemu-io: the same chunks, one `write -s FILE OFF 4k` command each on stdin of one qemu-io process
//      (each chunk's bytes in a file of its own, made before the clock starts), then its exit;
//  both over the same 1 GiB raw base, checked with `qemu-img compare` against each other.
import { execFile, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDiskOverlay, createQcow2Writer } from '../packages/qemu-driver/src/index.js';

const run = promisify(execFile);
const CHUNK = 4096;
const BASE_BYTES = 1024 ** 3;
const CHUNKS = Number(process.argv[2] ?? 8192);
const RUNS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function chunkOffsets(): number[] {
  const all = BASE_BYTES / CHUNK;
  const picked = new Set<number>();
  let x = 12345;
  while (picked.size < CHUNKS) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    picked.add(x % all);
  }
  return [...picked].map((i) => i * CHUNK);
}

async function withNode(file: string, base: string, offsets: number[], data: Buffer[]): Promise<number> {
  const t = performance.now();
  const writer = await createQcow2Writer({
    file,
    backingFile: base,
    backingFormat: 'raw',
    virtualSize: BASE_BYTES,
  });
  const inFlight = new Set<Promise<void>>();
  for (const [i, offset] of offsets.entries()) {
    const p = writer.write(offset, data[i] as Buffer).then(() => {
      inFlight.delete(p);
    });
    inFlight.add(p);
    if (inFlight.size >= 32) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await writer.close();
  return (performance.now() - t) / 1000;
}

async function withQemuIo(file: string, base: string, offsets: number[], dir: string): Promise<number> {
  await createDiskOverlay({ file, backingFile: base, backingFormat: 'raw', clusterSize: CHUNK });
  const commands = offsets.map((offset, i) => `write -q -s ${join(dir, String(i))} ${offset} 4k\n`).join('');
  const t = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('qemu-io', ['-f', 'qcow2', file], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`qemu-io exited ${code}`))));
    child.stdin.end(`${commands}quit\n`);
  });
  await run('sync', [file]);
  return (performance.now() - t) / 1000;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'bench-qcow2-'));
  try {
    const base = join(dir, 'base.raw');
    await writeFile(base, '');
    await truncate(base, BASE_BYTES);
    const offsets = chunkOffsets();
    const data = offsets.map(() => randomFillSync(Buffer.alloc(CHUNK)));
    await mkdir(join(dir, 'chunks'));
    for (const [i, chunk] of data.entries()) await writeFile(join(dir, 'chunks', String(i)), chunk);
    const node: number[] = [];
    const qemuIo: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      node.push(await withNode(join(dir, 'node.qcow2'), base, offsets, data));
      qemuIo.push(await withQemuIo(join(dir, 'qemu-io.qcow2'), base, offsets, join(dir, 'chunks')));
    }
    await run('qemu-img', ['compare', join(dir, 'node.qcow2'), join(dir, 'qemu-io.qcow2')]);
    const mb = (CHUNKS * CHUNK) / 1e6;
    const result = {
      chunks: CHUNKS,
      megabytes: mb,
      nodeWriter: { seconds: median(node), mbPerSecond: mb / median(node) },
      qemuIo: { seconds: median(qemuIo), mbPerSecond: mb / median(qemuIo) },
      ratioQemuIoOverNode: median(qemuIo) / median(node),
      identical: true,
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
