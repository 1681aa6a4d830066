// The overlay pipeline on synthetic images (no QEMU run): a base built from a hand-made disk and memory
// stream, a "custom" VM made of a qcow2 written with qemu-io and another stream; applyOverlay must give
// back the custom disk byte for byte and the custom memory page for page, for every delta choice.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BaseInfo, type BaseRegistry, openBaseRegistry } from '@cloudlet/base-registry';
import { collectMigrationStream, type RamPage } from '@cloudlet/memory-snapshot';
import { openOverlay } from '@cloudlet/overlay-format';
import { createDiskOverlay, parseVmSpec } from '@cloudlet/qemu-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyOverlay, type DeltaChoice, openOverlayPipeline, reconstructOverlay } from '../src/index.js';
import { filledPage, PAGE, streamOf, syntheticPrologue, writeSyntheticStream } from './synthetic-stream.js';

const run = promisify(execFile);
const prologue = syntheticPrologue([{ name: 'pc.ram', length: 64 * PAGE }]);

function randomPage(seed: number): Uint8Array {
  const page = Buffer.alloc(PAGE);
  let x = seed * 2654435761;
  for (let i = 0; i < PAGE; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    page.writeUInt32LE(x, i);
  }
  return page;
}

const basePages: RamPage[] = [0, 1, 2, 3, 4, 5].map((i) => ({
  block: 'pc.ram',
  offset: i * PAGE,
  data: randomPage(i),
}));

function customPages(): RamPage[] {
  const edited = Buffer.from(randomPage(1));
  edited.fill(7, 100, 140); // an in-place edit: an XOR delta
  const shifted = Buffer.concat([Buffer.alloc(16, 9), randomPage(2).subarray(0, PAGE - 16)]); // a VCDIFF delta
  return [
    { block: 'pc.ram', offset: 0, data: basePages[0]?.data ?? null }, // unchanged
    { block: 'pc.ram', offset: PAGE, data: edited },
    { block: 'pc.ram', offset: 2 * PAGE, data: shifted },
    { block: 'pc.ram', offset: 3 * PAGE, data: null }, // zeroed
    { block: 'pc.ram', offset: 4 * PAGE, data: basePages[4]?.data ?? null }, // unchanged
    { block: 'pc.ram', offset: 5 * PAGE, data: basePages[5]?.data ?? null }, // unchanged
    { block: 'pc.ram', offset: 10 * PAGE, data: basePages[4]?.data ?? null }, // a copy of another base page
    { block: 'pc.ram', offset: 11 * PAGE, data: randomPage(100) }, // new
    { block: 'pc.ram', offset: 12 * PAGE, data: filledPage(0x5a) }, // same content written to disk below
  ];
}

async function pagesOf(file: string): Promise<Map<string, string>> {
  const { pages } = await collectMigrationStream(createReadStream(file));
  return new Map(pages.map((p) => [`${p.block}@${p.offset}`, Buffer.from(p.data ?? []).toString('base64')]));
}

describe('overlay pipeline on synthetic images', () => {
  let work: string;
  let registry: BaseRegistry;
  let base: BaseInfo;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'core-pipeline-'));
    registry = await openBaseRegistry({ home: join(work, 'home') });
    const staging = await registry.stage();
    const disk = await open(staging.diskPath, 'w');
    await disk.truncate(1024 * 1024);
    for (const chunk of [1, 2, 3]) await disk.write(randomPage(50 + chunk), 0, PAGE, chunk * PAGE);
    await disk.close();
    await writeSyntheticStream(staging.memoryPath, prologue, basePages);
    const spec = { memoryMiB: 16, disks: [{ file: staging.diskPath, format: 'raw' }] };
    ({ base } = await registry.register(staging, { spec, hostFacts: { qemuVersion: '7.2.22' } }));
  });
  afterAll(async () => {
    registry?.close();
    await rm(work, { recursive: true, force: true });
  });

  for (const delta of ['auto', 'xor', 'vcdiff', 'none'] as DeltaChoice[]) {
    it(`apply(create(base, custom)) gives back the custom disk and memory (--delta ${delta})`, async () => {
      const dir = await mkdtemp(join(work, `${delta}-`));
      const qcow2 = join(dir, 'custom.qcow2');
      await createDiskOverlay({
        file: qcow2,
        backingFile: base.paths.disk,
        backingFormat: 'raw',
        clusterSize: PAGE,
      });
      const io = (command: string) => run('qemu-io', ['-f', 'qcow2', '-c', command, qcow2]);
      await io(`write -P 0x5a ${5 * PAGE} 4k`); // the memory page 12 content: a memory↔disk duplicate
      await io(`write -P 0x33 ${8 * PAGE} 8k`); // new data, two equal chunks: a self reference
      await io(`write -z ${PAGE} 4k`); // a base chunk zeroed

      const pipe = await openOverlayPipeline({
        base,
        indexes: await registry.openIndexes(base.id),
        output: join(dir, 'overlay.zip'),
        spec: parseVmSpec(base.localSpec),
        delta,
      });
      expect(await pipe.memory(streamOf(prologue, customPages()))).toBe(6);
      expect(await pipe.disk(qcow2)).toBe(4);
      const { summary, stats } = await pipe.finish();
      const kinds = summary.manifest.statistics;
      expect(kinds.disk.self.count).toBe(2); // chunk 5 = memory page 12, chunk 9 = chunk 8
      expect(kinds.memory['base-memory'].count).toBe(1);
      // VCDIFF (with `auto`) finds all three deltas: the edit, the shift and the 0x5a fill (vs a zero page);
      // XOR alone only the in-place edit.
      const deltas = kinds.memory.xor.count + kinds.memory.vcdiff.count;
      expect(deltas).toBe({ auto: 3, vcdiff: 3, xor: 1, none: 0 }[delta]);
      expect(stats.chunks).toBe(10);

      await writeSyntheticStream(join(dir, 'custom.snap'), prologue, customPages());
      await applyOverlay(base, join(dir, 'overlay.zip'), {
        diskOut: join(dir, 'applied.raw'),
        memoryOut: join(dir, 'applied.snap'),
      });
      await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', qcow2, join(dir, 'applied.raw')]);
      // collectMigrationStream keeps non-zero pages only, on both sides
      expect(await pagesOf(join(dir, 'applied.snap'))).toEqual(await pagesOf(join(dir, 'custom.snap')));

      // Synthesis' reconstruction: a qcow2 holding the overlay's disk chunks, and the base stream with the
      // overlay's pages merged in (never a full-size file).
      const reader = await openOverlay(join(dir, 'overlay.zip'));
      const synthDir = await mkdtemp(join(dir, 'synth-'));
      try {
        const rebuilt = await reconstructOverlay({ base, overlay: reader, workDir: synthDir, inFlight: 2 });
        await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', qcow2, rebuilt.disk]);
        const merged = await collectMigrationStream(rebuilt.memoryStream());
        rebuilt.close();
        const mergedPages = new Map(
          merged.pages.map((p) => [`${p.block}@${p.offset}`, Buffer.from(p.data ?? []).toString('base64')]),
        );
        expect(mergedPages).toEqual(await pagesOf(join(dir, 'custom.snap')));
      } finally {
        await reader.close();
      }
    });
  }

  it('refuses to apply an overlay to another base', async () => {
    const dir = await mkdtemp(join(work, 'other-'));
    const zip = (await run('find', [work, '-name', 'overlay.zip'])).stdout.trim().split('\n')[0] ?? '';
    const other = { ...base, id: 'f'.repeat(64) };
    await expect(
      applyOverlay(other, zip, { diskOut: join(dir, 'd.raw'), memoryOut: join(dir, 'm.snap') }),
    ).rejects.toThrow(/overlay is for base/);
  });
});
