import { describe, expect, it } from 'vitest';
import { readMigrationStream, writeMigrationStream } from '../src/index.js';
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
  type SyntheticStreamSpec,
} from './stream-builder.js';

const blocks = [
  { name: 'pc.ram', length: 16 * PAGE },
  { name: '0000:00:03.0/virtio-net-pci.rom', length: 4 * PAGE },
  { name: '/rom@etc/acpi/rsdp', length: PAGE },
];

const spec: SyntheticStreamSpec = {
  blocks,
  sections: [
    [
      { block: 'pc.ram', offset: 0, data: patternPage(1) },
      { block: 'pc.ram', offset: PAGE, data: null },
      { block: 'pc.ram', offset: 15 * PAGE, data: patternPage(2) },
      { block: '0000:00:03.0/virtio-net-pci.rom', offset: 3 * PAGE, data: patternPage(3) },
    ],
    [
      // CONTINUE across a section boundary refers to the last named block, as in QEMU's loader.
      { block: '0000:00:03.0/virtio-net-pci.rom', offset: 0, data: null, named: false },
      { block: 'pc.ram', offset: 2 * PAGE, data: patternPage(4), named: true },
      { block: 'pc.ram', offset: 3 * PAGE, data: patternPage(5), named: true },
    ],
    [{ block: '/rom@etc/acpi/rsdp', offset: 0, data: patternPage(6) }],
  ],
};

describe('readMigrationStream', () => {
  it('gives each full page the stream offset of its bytes (null for zero records)', async () => {
    const s = buildStream(spec);
    const offsets: (number | null)[] = [];
    for await (const item of readMigrationStream(chunked(s.bytes, [777]))) {
      if (item.kind !== 'page') continue;
      offsets.push(item.dataOffset);
      if (item.dataOffset === null) expect(item.page.data).toBeNull();
      else expect(s.bytes.subarray(item.dataOffset, item.dataOffset + PAGE)).toEqual(item.page.data);
    }
    expect(offsets.filter((o) => o !== null)).toHaveLength(6);
  });

  it('parses prologue, every record kind, device tail and vmdesc', async () => {
    const s = buildStream(spec);
    const r = await readAll(chunked(s.bytes));
    expect(r.kinds).toEqual(['prologue', 'page', 'deviceTail', 'vmdesc']);
    expect(r.prologue).toEqual({
      version: 3,
      machineType: 'pc-i440fx-7.2',
      capabilities: [],
      configBytes: s.bytes.slice(s.at.config, s.at.ramStart),
      ramSectionId: 2,
      ramInstanceId: 0,
      ramVersionId: 4,
      blocks,
      hasSectionFooters: true,
    });
    expect(r.pages).toEqual(
      spec.sections.flat().map((rec) => ({ block: rec.block, offset: rec.offset, data: rec.data })),
    );
    expect(r.deviceTail).toEqual(deviceTailBytes(DEFAULT_DEVICES, true));
    expect(r.vmdesc).toEqual(s.vmdesc);
  });

  it('materialises a zero record with a non-zero fill byte as a full page', async () => {
    const s = buildStream({ blocks, sections: [[{ block: 'pc.ram', offset: PAGE, data: 0xab }]] });
    const r = await readAll(chunked(s.bytes));
    expect(r.pages).toEqual([{ block: 'pc.ram', offset: PAGE, data: new Uint8Array(PAGE).fill(0xab) }]);
  });

  it('handles blocks and page offsets beyond 4 GiB (be64 read as two be32 halves)', async () => {
    const big = [{ name: 'pc.ram', length: 6 * 2 ** 30 }];
    const offset = 5 * 2 ** 30 + 7 * PAGE;
    const s = buildStream({ blocks: big, sections: [[{ block: 'pc.ram', offset, data: patternPage(7) }]] });
    const r = await readAll(chunked(s.bytes));
    expect(r.prologue.blocks).toEqual(big);
    expect(r.pages).toEqual([{ block: 'pc.ram', offset, data: patternPage(7) }]);
    const rewritten = concat(
      await collect(writeMigrationStream({ prologue: r.prologue, pages: r.pages, deviceTail: r.deviceTail })),
    );
    expect((await readAll(chunked(rewritten))).pages).toEqual(r.pages);
  });

  it('handles streams without section footers', async () => {
    const s = buildStream({ ...spec, footers: false });
    const r = await readAll(chunked(s.bytes));
    expect(r.prologue.hasSectionFooters).toBe(false);
    expect(r.pages).toHaveLength(8);
    expect(r.deviceTail).toEqual(deviceTailBytes(DEFAULT_DEVICES, false));
  });

  it('reads x-ignore-shared block tables (mr_addr) and the uuid/target-page-bits subsections', async () => {
    const shared = [
      { name: 'pc.ram', length: 16 * PAGE, mrAddr: 0n },
      { name: 'pc.bios', length: 4 * PAGE, mrAddr: 0xfffc0000n },
      { name: 'high', length: PAGE, mrAddr: 0xffff_ffff_ffff_f000n },
    ];
    const s = buildStream({
      blocks: shared,
      capabilities: ['x-ignore-shared', 'validate-uuid'],
      uuid: Uint8Array.from({ length: 16 }, (_, i) => i),
      targetPageBits: 12,
      sections: [[{ block: 'pc.bios', offset: 3 * PAGE, data: patternPage(9) }]],
    });
    const r = await readAll(chunked(s.bytes));
    expect(r.prologue.capabilities).toEqual(['x-ignore-shared', 'validate-uuid']);
    expect(r.prologue.blocks).toEqual(shared);
    expect(r.prologue.configBytes).toEqual(s.bytes.slice(s.at.config, s.at.ramStart));
    expect(r.pages).toEqual([{ block: 'pc.bios', offset: 3 * PAGE, data: patternPage(9) }]);
  });

  it('accepts a stream without vmdesc and one without device sections', async () => {
    const noVmdesc = await readAll(chunked(buildStream({ ...spec, vmdesc: null }).bytes));
    expect(noVmdesc.kinds).toEqual(['prologue', 'page', 'deviceTail']);
    const bare = await readAll(chunked(buildStream({ ...spec, devices: [], vmdesc: null }).bytes));
    expect(bare.deviceTail).toEqual(Uint8Array.of(0));
    expect(bare.vmdesc).toBeNull();
  });

  it('gives the same parse for 1-byte chunks and random chunk sizes', async () => {
    const s = buildStream(spec);
    const whole = await readAll(chunked(s.bytes));
    expect(await readAll(chunked(s.bytes, [1]))).toEqual(whole);
    for (let seed = 1; seed <= 20; seed++) {
      const sizes = Array.from({ length: 7 }, (_, i) => 1 + ((seed * 7919 + i * 104729) % 9000));
      expect(await readAll(chunked(s.bytes, sizes))).toEqual(whole);
    }
  });

  it('yields zero-copy views for pages inside one chunk and copies for straddling pages', async () => {
    const s = buildStream(spec);
    const chunk = s.bytes;
    const pages = (await collect(readMigrationStream(chunked(chunk)))).flatMap((i) =>
      i.kind === 'page' ? [i.page] : [],
    );
    const full = pages.filter((p) => p.data !== null);
    expect(full.every((p) => p.data?.buffer === chunk.buffer)).toBe(true);
    const small = (await collect(readMigrationStream(chunked(chunk, [1000])))).flatMap((i) =>
      i.kind === 'page' && i.page.data !== null ? [i.page.data] : [],
    );
    expect(small.every((d) => d.buffer !== chunk.buffer)).toBe(true);
  });

  it('streams: yields pages before the input has ended and releases the source on early exit', async () => {
    const s = buildStream(spec);
    let pulled = 0;
    let returned = false;
    const source: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]() {
        let at = 0;
        return {
          async next() {
            if (at >= s.bytes.length) return { done: true, value: undefined };
            pulled++;
            const c = s.bytes.subarray(at, at + 512);
            at += 512;
            return { done: false, value: c };
          },
          async return() {
            returned = true;
            return { done: true, value: undefined };
          },
        };
      },
    };
    for await (const item of readMigrationStream(source)) {
      if (item.kind === 'page') break;
    }
    expect(pulled).toBeLessThan(Math.ceil(s.bytes.length / 512) / 2);
    expect(returned).toBe(true);
  });

  it('accepts Node Buffers (e.g. from a Readable)', async () => {
    const { Readable } = await import('node:stream');
    const s = buildStream(spec);
    const r = await readAll(
      Readable.from([Buffer.from(s.bytes.subarray(0, 5000)), Buffer.from(s.bytes.subarray(5000))]),
    );
    expect(r.pages).toHaveLength(8);
  });

  it('rejects chunks that are not bytes', async () => {
    const source = (async function* () {
      yield 'QEVM' as unknown as Uint8Array;
    })();
    await expect(collect(readMigrationStream(source))).rejects.toThrow(TypeError);
  });
});
