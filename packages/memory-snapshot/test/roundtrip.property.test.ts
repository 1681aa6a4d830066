import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MigrationStreamError,
  type RamPage,
  readMigrationStream,
  writeMigrationStream,
} from '../src/index.js';
import {
  buildStream,
  chunked,
  collect,
  concat,
  digest,
  PAGE,
  type ParsedStream,
  patternPage,
  readAll,
  type SyntheticStreamSpec,
} from './stream-builder.js';

/** Random RAM block tables, page sets (any order, any subset), record naming, section splits and tails. */
const streamSpec = fc
  .record({
    blocks: fc.uniqueArray(
      fc.record({
        // Any one-byte chars: names are carried byte for byte.
        name: fc.string({
          unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
          minLength: 1,
          maxLength: 40,
        }),
        pages: fc.integer({ min: 1, max: 6 }),
        mrAddr: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      }),
      { minLength: 1, maxLength: 5, selector: (b) => b.name },
    ),
    footers: fc.boolean(),
    ignoreShared: fc.boolean(),
    machineType: fc.string({
      unit: fc.constantFrom(...'pc-i440fxq35.0123456789'),
      minLength: 1,
      maxLength: 30,
    }),
    uuid: fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }), { nil: undefined }),
    devices: fc.array(
      fc.record({
        name: fc.string({
          unit: fc.constantFrom(...'abcdefghijklmnop_/:0123456789'),
          minLength: 1,
          maxLength: 20,
        }),
        // No 0x7e in bodies: a body holding `7e <id> 00` right before a truncation point would look
        // like a complete stream (documented limitation of the end-of-tail rule).
        body: fc.uint8Array({ maxLength: 64 }).map((b) => b.map((x) => (x === 0x7e ? 0x7f : x))),
      }),
      { maxLength: 4 },
    ),
    vmdesc: fc.option(fc.json({ maxDepth: 2 }), { nil: null }),
    records: fc.array(
      fc.record({
        block: fc.nat(),
        page: fc.nat(),
        kind: fc.constantFrom('zero', 'data', 'data', 'fill'),
        seed: fc.nat(),
        forceName: fc.boolean(),
        endSection: fc.boolean(),
      }),
      { maxLength: 24 },
    ),
  })
  .map((m): SyntheticStreamSpec => {
    const blocks = m.blocks.map((b) => ({
      name: b.name,
      length: b.pages * PAGE,
      ...(m.ignoreShared ? { mrAddr: b.mrAddr } : {}),
    }));
    const sections: SyntheticStreamSpec['sections'] = [[]];
    for (const r of m.records) {
      const block = m.blocks[r.block % m.blocks.length] ?? m.blocks[0];
      if (block === undefined) continue;
      const data = r.kind === 'zero' ? null : r.kind === 'fill' ? 1 + (r.seed % 255) : patternPage(r.seed);
      sections.at(-1)?.push({
        block: block.name,
        offset: (r.page % block.pages) * PAGE,
        data,
        ...(r.forceName ? { named: true } : {}),
      });
      if (r.endSection) sections.push([]);
    }
    return {
      blocks,
      sections,
      footers: m.footers,
      machineType: m.machineType,
      capabilities: m.ignoreShared ? ['x-ignore-shared'] : [],
      ...(m.uuid === undefined ? {} : { uuid: m.uuid }),
      devices: m.devices.map((d, i) => ({ id: 10 + i, ...d })),
      vmdesc: m.vmdesc,
    };
  });

/** The pages a spec describes, as the reader reports them. */
function expectedPages(spec: SyntheticStreamSpec): RamPage[] {
  return spec.sections.flat().map((r) => ({
    block: r.block,
    offset: r.offset,
    data: typeof r.data === 'number' ? new Uint8Array(PAGE).fill(r.data) : r.data,
  }));
}

async function rewrite(parsed: ParsedStream, pagesPerSection: number): Promise<Uint8Array> {
  return concat(
    await collect(
      writeMigrationStream({
        prologue: parsed.prologue,
        pages: parsed.pages,
        deviceTail: parsed.deviceTail,
        ...(parsed.vmdesc === null ? {} : { vmdesc: parsed.vmdesc }),
        pagesPerSection,
      }),
    ),
  );
}

const chunkSizes = fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 8 });

describe('migration stream properties', () => {
  it('read gives back the blocks, pages, tail and vmdesc that were written', async () => {
    await fc.assert(
      fc.asyncProperty(streamSpec, async (spec) => {
        const s = buildStream(spec);
        const parsed = await readAll(chunked(s.bytes));
        expect(parsed.prologue.blocks).toEqual(spec.blocks);
        expect(parsed.prologue.hasSectionFooters).toBe(spec.footers);
        expect(parsed.prologue.machineType).toBe(spec.machineType);
        expect(digest(parsed).pages).toEqual(digest({ ...parsed, pages: expectedPages(spec) }).pages);
        expect(Buffer.from(parsed.deviceTail).equals(s.deviceTail)).toBe(true);
        expect(parsed.vmdesc === null ? null : Buffer.from(parsed.vmdesc).toString()).toEqual(
          s.vmdesc === null ? null : Buffer.from(s.vmdesc).toString(),
        );
      }),
    );
  });

  it('write(read(x)) reads back identically, and read/write is idempotent byte for byte', async () => {
    await fc.assert(
      fc.asyncProperty(streamSpec, fc.integer({ min: 1, max: 5 }), async (spec, perSection) => {
        const first = await readAll(chunked(buildStream(spec).bytes));
        const written = await rewrite(first, perSection);
        const second = await readAll(chunked(written));
        expect(digest(second)).toEqual(digest(first));
        const rewritten = await rewrite(second, perSection);
        expect(Buffer.from(rewritten).equals(written)).toBe(true);
      }),
    );
  });

  it('arbitrary chunking of the input does not change the parse', async () => {
    await fc.assert(
      fc.asyncProperty(streamSpec, chunkSizes, async (spec, sizes) => {
        const bytes = buildStream(spec).bytes;
        expect(digest(await readAll(chunked(bytes, sizes)))).toEqual(digest(await readAll(chunked(bytes))));
      }),
    );
  });

  it('truncation at any byte raises truncated', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamSpec,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        chunkSizes,
        async (spec, where, sizes) => {
          const s = buildStream(spec);
          const cut = Math.floor(where * s.bytes.length);
          const outcome = await collect(readMigrationStream(chunked(s.bytes.subarray(0, cut), sizes))).then(
            () => 'parsed',
            (e: unknown) => e,
          );
          if (cut === s.at.vmdesc) {
            // Cut exactly before the vmdesc: a complete stream without one (QEMU accepts those too).
            expect(outcome).toBe('parsed');
          } else {
            expect(outcome).toBeInstanceOf(MigrationStreamError);
            expect(outcome).toMatchObject({ code: 'truncated', offset: cut });
          }
        },
      ),
    );
  });

  it('every truncation point of one small stream raises truncated', async () => {
    const s = buildStream({
      blocks: [
        { name: 'pc.ram', length: 2 * PAGE },
        { name: 'rom', length: PAGE },
      ],
      sections: [
        [{ block: 'pc.ram', offset: PAGE, data: patternPage(1) }],
        [{ block: 'rom', offset: 0, data: null }],
      ],
      vmdesc: null,
    });
    for (let cut = 0; cut < s.bytes.length; cut++) {
      const e = await collect(readMigrationStream(chunked(s.bytes.subarray(0, cut), [7]))).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, `cut at ${cut}`).toMatchObject({ code: 'truncated', offset: cut });
    }
  });
});
