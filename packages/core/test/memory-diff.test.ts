import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChunkIndexBuilder } from '@cloudlet/delta';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changedMemoryPages, type MemoryStreamFrame, openRamPages, RamLayoutError } from '../src/index.js';
import { filledPage, PAGE, streamOf, syntheticPrologue, writeSyntheticStream } from './synthetic-stream.js';

const blocks = [
  { name: 'pc.ram', length: 8 * PAGE },
  { name: 'pc.bios', length: 2 * PAGE },
];
const prologue = syntheticPrologue(blocks);
// Base: pc.ram pages 0..3 = 1,2,3,4; page 4.. zero; bios page 0 = 9.
const basePages = [0, 1, 2, 3].map((i) => ({ block: 'pc.ram', offset: i * PAGE, data: filledPage(i + 1) }));
basePages.push({ block: 'pc.bios', offset: 0, data: filledPage(9) });

function baseIndex() {
  const builder = createChunkIndexBuilder('memory', 10);
  basePages.forEach((p) => {
    builder.set(p.block === 'pc.ram' ? p.offset / PAGE : 8 + p.offset / PAGE, p.data);
  });
  return builder.finish({ unsetAreZero: true });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('changedMemoryPages', () => {
  it('yields only pages that differ from the same-place base page, with the frame captured', async () => {
    const next = [
      { block: 'pc.ram', offset: 0, data: filledPage(1) }, // unchanged
      { block: 'pc.ram', offset: PAGE, data: filledPage(7) }, // changed
      { block: 'pc.ram', offset: 2 * PAGE, data: null }, // now zero
      { block: 'pc.ram', offset: 5 * PAGE, data: filledPage(3) }, // was zero (and equals base page 2)
      { block: 'pc.ram', offset: 6 * PAGE, data: null }, // zero in both
      { block: 'pc.bios', offset: 0, data: filledPage(9) }, // unchanged
    ];
    const frame: MemoryStreamFrame = {};
    const changed = await collect(changedMemoryPages(streamOf(prologue, next), baseIndex(), frame));
    expect(changed.map((c) => [c.index, c.data === null ? 'zero' : c.data[0]])).toEqual([
      [1, 7],
      [2, 'zero'],
      [5, 3],
    ]);
    expect(frame.prologue?.blocks).toEqual(blocks);
    expect(frame.deviceTail?.at(-1)).toBe(0x00);
  });

  it('refuses a RAM layout other than the base', async () => {
    const other = syntheticPrologue([{ name: 'pc.ram', length: 16 * PAGE }]);
    await expect(collect(changedMemoryPages(streamOf(other, []), baseIndex(), {}))).rejects.toBeInstanceOf(
      RamLayoutError,
    );
  });
});

describe('openRamPages', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'core-flat-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads every page by its flat index from the snapshot file, zero pages as zeros', async () => {
    await writeSyntheticStream(join(dir, 'mem.snap'), prologue, basePages);
    const ram = await openRamPages(join(dir, 'mem.snap'));
    try {
      expect(ram.pageCount).toBe(10);
      expect((await ram.page(2))[100]).toBe(3);
      expect((await ram.page(8))[0]).toBe(9);
      expect(Buffer.from(await ram.page(6)).equals(Buffer.alloc(PAGE))).toBe(true);
      await expect(ram.page(10)).rejects.toThrow(RangeError);
      expect(ram.pageSync(2)[100]).toBe(3);
    } finally {
      await ram.close();
    }
  });
});
