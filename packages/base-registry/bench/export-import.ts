// Export/import throughput of the base registry.
//   pnpm exec tsx packages/base-registry/bench/export-import.ts [workdir]
// 1) a 1 GiB disk, 90 % random 4 KiB chunks and 10 % zero, + a 64 MiB-RAM memory snapshot;
// 2) an 8 GiB sparse all-zero disk (+ the same small memory snapshot).
// For each: register (index), export, import into a second home (decompress + index + verify).
// MB = 10^6 bytes; rates are over the raw bytes (disk + memory.snap).
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { openBaseRegistry } from '../src/index.js';
import { defaultSpec, writeMemory } from '../test/helpers.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

async function writeMostlyRandomDisk(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  const block = Buffer.alloc(8 * MiB);
  for (let at = 0; at < bytes; at += block.length) {
    randomFillSync(block);
    for (let c = 0; c < block.length; c += 4096) if (((at + c) / 4096) % 10 === 9) block.fill(0, c, c + 4096);
    await handle.write(block, 0, block.length, at);
  }
  await handle.close();
}

async function writeSparseDisk(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  await handle.truncate(bytes);
  await handle.close();
}

async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await run();
  return [result, (performance.now() - start) / 1000];
}

async function memberSizes(zip: string): Promise<string> {
  const archive = await yauzl.openPromise(zip);
  const sizes: string[] = [];
  for await (const entry of archive.eachEntry()) sizes.push(`${entry.fileName} ${entry.compressedSize} B`);
  return sizes.join(', ');
}

const mbps = (bytes: number, seconds: number) => `${(bytes / 1e6 / seconds).toFixed(0)} MB/s`;

async function scenario(work: string, name: string, makeDisk: (path: string) => Promise<void>) {
  const dir = await mkdtemp(join(work, 'cloudlet-bench-'));
  try {
    const source = await openBaseRegistry({ home: join(dir, 'source') });
    const target = await openBaseRegistry({ home: join(dir, 'target') });
    const staging = await source.stage();
    await makeDisk(staging.diskPath);
    await writeMemory(staging.memoryPath, { ramPages: 16384, random: true, zeroEvery: 4 });
    const [{ base }, registerSeconds] = await timed(() =>
      source.register(staging, { spec: defaultSpec(), hostFacts: { qemuVersion: 'bench' } }),
    );
    const raw = base.diskBytes + base.memoryBytes;
    const zip = join(dir, 'base.zip');
    const [, exportSeconds] = await timed(() => source.exportBase(base.id, zip));
    const zipBytes = (await stat(zip)).size;
    const members = await memberSizes(zip);
    const [imported, importSeconds] = await timed(() => target.importBase(zip));
    if (imported.base.id !== base.id) throw new Error('id changed on import');
    const allocated = (await stat(imported.base.paths.disk)).blocks * 512;
    console.log(
      [
        `${name}: disk ${base.diskBytes / MiB} MiB + memory.snap ${(base.memoryBytes / MiB).toFixed(1)} MiB`,
        `  register ${registerSeconds.toFixed(2)} s (${mbps(raw, registerSeconds)})`,
        `  export   ${exportSeconds.toFixed(2)} s (${mbps(raw, exportSeconds)}) → zip ${(zipBytes / MiB).toFixed(2)} MiB (${members})`,
        `  import   ${importSeconds.toFixed(2)} s (${mbps(raw, importSeconds)}); imported disk occupies ${(allocated / MiB).toFixed(1)} MiB`,
      ].join('\n'),
    );
    source.close();
    target.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const work = process.argv[2] ?? tmpdir();
await scenario(work, '1 GiB 90 % random', (path) => writeMostlyRandomDisk(path, GiB));
await scenario(work, '8 GiB sparse zero', (path) => writeSparseDisk(path, 8 * GiB));
