import { describe, expect, it } from 'vitest';
import {
  MigrationStreamError,
  type RamPage,
  type StreamPrologue,
  writeMigrationStream,
} from '../src/index.js';
import {
  buildStream,
  chunked,
  collect,
  concat,
  DEFAULT_DEVICES,
  deviceTailBytes,
  PAGE,
  patternPage,
  readAll,
  type SyntheticRecord,
  type SyntheticStreamSpec,
} from './stream-builder.js';

const blocks = [
  { name: 'pc.ram', length: 32 * PAGE },
  { name: 'pc.bios', length: 4 * PAGE },
];

const pages: RamPage[] = [
  { block: 'pc.ram', offset: 5 * PAGE, data: patternPage(1) },
  { block: 'pc.ram', offset: 0, data: null },
  { block: 'pc.bios', offset: 3 * PAGE, data: patternPage(2) },
  { block: 'pc.ram', offset: 31 * PAGE, data: patternPage(3) },
  { block: 'pc.ram', offset: 30 * PAGE, data: patternPage(4) },
];

async function prologueOf(spec: Partial<SyntheticStreamSpec> = {}): Promise<StreamPrologue> {
  return (await readAll(chunked(buildStream({ blocks, sections: [[]], ...spec }).bytes))).prologue;
}

/** What the writer should produce: PARTs of `perSection` records, each naming its first block, then an empty END. */
function expectedLayout(perSection: number, footers = true, vmdesc: string | null = null): Uint8Array {
  const sections: SyntheticRecord[][] = [];
  pages.forEach((p, i) => {
    if (i % perSection === 0) sections.push([]);
    const named = i % perSection === 0 ? true : undefined;
    sections.at(-1)?.push({ block: p.block, offset: p.offset, data: p.data, ...(named ? { named } : {}) });
  });
  sections.push([]);
  return buildStream({ blocks, sections, footers, vmdesc }).bytes;
}

async function write(
  prologue: StreamPrologue,
  extra: { pagesPerSection?: number; vmdesc?: Uint8Array } = {},
) {
  return concat(
    await collect(
      writeMigrationStream({
        prologue,
        pages,
        deviceTail: deviceTailBytes(DEFAULT_DEVICES, prologue.hasSectionFooters),
        ...extra,
      }),
    ),
  );
}

async function writeError(run: () => AsyncGenerator<Uint8Array>): Promise<MigrationStreamError> {
  try {
    await collect(run());
  } catch (e) {
    if (e instanceof MigrationStreamError) return e;
    throw e;
  }
  throw new Error('writer accepted its input');
}

describe('writeMigrationStream', () => {
  it('emits the documented layout byte for byte (checked against the independent test builder)', async () => {
    const prologue = await prologueOf();
    expect(await write(prologue)).toEqual(expectedLayout(4096));
    expect(await write(prologue, { pagesPerSection: 2 })).toEqual(expectedLayout(2));
    expect(await write(prologue, { pagesPerSection: 1 })).toEqual(expectedLayout(1));
    const vmdesc = new TextEncoder().encode('{"page_size": 4096}');
    expect(await write(prologue, { vmdesc })).toEqual(expectedLayout(4096, true, '{"page_size": 4096}'));
  });

  it('omits footers when the original had none, and writes mr_addr for x-ignore-shared', async () => {
    const noFooters = await prologueOf({ footers: false });
    expect(await write(noFooters, { pagesPerSection: 3 })).toEqual(expectedLayout(3, false));
    const shared = await prologueOf({
      capabilities: ['x-ignore-shared'],
      blocks: blocks.map((b, i) => ({ ...b, mrAddr: BigInt(i) * 0x1_0000_0000n + 0xfffc0000n })),
    });
    const out = await readAll(chunked(await write(shared)));
    expect(out.prologue).toEqual(shared);
    expect(out.pages).toEqual(pages);
  });

  it('accepts async page sources and yields reasonably sized chunks', async () => {
    const prologue = await prologueOf();
    const many = Array.from({ length: 100 }, (_, i) => ({
      block: 'pc.ram',
      offset: (i % 32) * PAGE,
      data: patternPage(i),
    }));
    const chunks = await collect(
      writeMigrationStream({
        prologue,
        pages: (async function* () {
          yield* many;
        })(),
        deviceTail: Uint8Array.of(0),
        chunkBytes: 65536,
      }),
    );
    const total = chunks.reduce((s, c) => s + c.length, 0);
    expect(total).toBeGreaterThan(100 * PAGE);
    expect(chunks.length).toBeLessThanOrEqual(Math.ceil(total / (65536 - 5000)) + 1);
    expect(chunks.every((c) => c.length <= 65536)).toBe(true);
    expect((await readAll(chunked(concat(chunks)))).pages).toEqual(many);
  });

  it('yields a large device tail without copying it', async () => {
    const prologue = await prologueOf();
    const bigBody = new Uint8Array(1 << 20).fill(7);
    const deviceTail = deviceTailBytes([{ id: 3, name: 'big', body: bigBody }], true);
    const chunks = await collect(writeMigrationStream({ prologue, pages: [], deviceTail }));
    expect(chunks.some((c) => c === deviceTail)).toBe(true);
    expect(Buffer.from((await readAll(chunked(concat(chunks)))).deviceTail).equals(deviceTail)).toBe(true);
  });

  it('rejects pages outside the block table', async () => {
    const prologue = await prologueOf();
    const tail = Uint8Array.of(0);
    const bad = async (page: RamPage) =>
      (await writeError(() => writeMigrationStream({ prologue, pages: [page], deviceTail: tail }))).code;
    expect(await bad({ block: 'pc.rum', offset: 0, data: null })).toBe('unknown-block');
    expect(await bad({ block: 'pc.bios', offset: 4 * PAGE, data: null })).toBe('absurd-size');
    expect(await bad({ block: 'pc.bios', offset: -PAGE, data: null })).toBe('absurd-size');
    expect(await bad({ block: 'pc.bios', offset: 100, data: null })).toBe('absurd-size');
    expect(await bad({ block: 'pc.bios', offset: 0, data: new Uint8Array(100) })).toBe('absurd-size');
    const e = await writeError(() =>
      writeMigrationStream({
        prologue,
        pages: [...pages, { block: 'x', offset: 0, data: null }],
        deviceTail: tail,
      }),
    );
    expect(e.offset).toBeGreaterThan(4 * PAGE);
  });

  it('rejects inconsistent prologues and device tails', async () => {
    const prologue = await prologueOf();
    const tail = Uint8Array.of(0);
    const bad = async (p: StreamPrologue, deviceTail: Uint8Array = tail) =>
      (await writeError(() => writeMigrationStream({ prologue: p, pages: [], deviceTail }))).code;
    expect(await bad({ ...prologue, capabilities: ['x-ignore-shared'] })).toBe('inconsistent-prologue');
    expect(await bad({ ...prologue, machineType: 'pc-q35-7.2' })).toBe('inconsistent-prologue');
    expect(await bad({ ...prologue, configBytes: prologue.configBytes.subarray(1) })).toBe(
      'inconsistent-prologue',
    );
    expect(await bad({ ...prologue, blocks: [{ name: 'pc.ram', length: PAGE, mrAddr: 0n }] })).toBe(
      'inconsistent-prologue',
    );
    expect(await bad({ ...prologue, blocks: [{ name: 'pc.ram', length: 100 }] })).toBe('absurd-size');
    expect(await bad({ ...prologue, blocks: [{ name: '', length: PAGE }] })).toBe('absurd-size');
    expect(await bad({ ...prologue, blocks: [{ name: 'π\u2028', length: PAGE }] })).toBe('absurd-size');
    expect(await bad({ ...prologue, blocks: [...blocks, ...blocks] })).toBe('bad-block-table');
    expect(await bad(prologue, Uint8Array.of(4, 0, 0, 0))).toBe('bad-device-tail');
    expect(await bad(prologue, deviceTailBytes(DEFAULT_DEVICES, false))).toBe('bad-device-tail');
    expect(await bad(prologue, new Uint8Array(0))).toBe('bad-device-tail');
    await expect(
      collect(writeMigrationStream({ prologue, pages: [], deviceTail: tail, pagesPerSection: 0 })),
    ).rejects.toThrow(RangeError);
  });
});
