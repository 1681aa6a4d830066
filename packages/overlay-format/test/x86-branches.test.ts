import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { zstdCodec } from '../src/codecs/zstd-codec.js';
import { decodeRecords, encodeRecord, RecordSteps } from '../src/record-codec.js';
import { decodeX86Branches, encodeX86Branches } from '../src/x86-branches.js';

const PAGE = 4096;
/** The node binary's .text: x86-64 code that is always at hand (read once, ~40 MB). */
const nodeCode = largestCodeSection(readFileSync(process.execPath));
const encoded = (bytes: number[], address: number) => {
  const page = Uint8Array.from(bytes);
  encodeX86Branches(page, address);
  return [...page];
};

// Bytes rich in what the transform looks at: opcodes E8/E9, REX.W MOV/LEA with RIP-relative ModRM bytes,
// operand top bytes 00/FF.
const branchyBytes = fc.uint8Array({ minLength: 0, maxLength: 600 }).chain((noise) =>
  fc
    .array(
      fc.tuple(
        fc.nat(Math.max(0, noise.length - 1)),
        fc.constantFrom(0xe8, 0xe9, 0x48, 0x4c, 0x8b, 0x8d, 0x05, 0x3d, 0x00, 0xff),
      ),
      {
        maxLength: 200,
      },
    )
    .map((sets) => {
      const bytes = Uint8Array.from(noise);
      for (const [at, value] of sets) bytes[at] = value;
      return bytes;
    }),
);

describe('x86 branch transform of raw pages', () => {
  it('decodes back to the original for any bytes at any address', () => {
    fc.assert(
      fc.property(branchyBytes, fc.nat(2 ** 52), (bytes, address) => {
        const page = Uint8Array.from(bytes);
        encodeX86Branches(page, address);
        decodeX86Branches(page, address);
        expect(page).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('writes a call as its target, counted from the page address (modulo 2^25)', () => {
    // call +0 at offset 0 of the page at 0x1000: the next instruction, 0x1005.
    expect(encoded([0xe8, 0, 0, 0, 0], 0x1000)).toEqual([0xe8, 0x05, 0x10, 0x00, 0x00]);
    // jmp −5 (to itself) at offset 3 of page 0: target 3.
    expect(encoded([0x90, 0x90, 0x90, 0xe9, 0xfb, 0xff, 0xff, 0xff], 0)).toEqual([
      0x90, 0x90, 0x90, 0xe9, 0x03, 0x00, 0x00, 0x00,
    ]);
    // A target past 2^24 wraps into the 25-bit range and keeps a 00/FF top byte.
    expect(encoded([0xe8, 0, 0, 0, 0], 2 ** 25 - 5)).toEqual([0xe8, 0, 0, 0, 0]);
    expect(encoded([0xe8, 0, 0, 0, 0], 2 ** 24)).toEqual([0xe8, 0x05, 0x00, 0x00, 0xff]);
  });

  it('writes a RIP-relative MOV/LEA with REX.W as its target', () => {
    // lea rax, [rip+0] at offset 0 of the page at 0x1000: the next instruction, 0x1007.
    expect(encoded([0x48, 0x8d, 0x05, 0, 0, 0, 0], 0x1000)).toEqual([
      0x48, 0x8d, 0x05, 0x07, 0x10, 0x00, 0x00,
    ]);
    // mov r15, [rip−16] at offset 1 (REX.WR 4C, ModRM 00 111 101): target 8 − 16 = −8, modulo 2^25.
    expect(encoded([0x90, 0x4c, 0x8b, 0x3d, 0xf0, 0xff, 0xff, 0xff], 0)).toEqual([
      0x90, 0x4c, 0x8b, 0x3d, 0xf8, 0xff, 0xff, 0xff,
    ]);
    // Not RIP-relative (ModRM 01 000 101: [rbp+disp8]), not MOV/LEA (48 89 is a store), no REX.W (8B 05):
    // left alone.
    for (const bytes of [
      [0x48, 0x8b, 0x45, 0, 0, 0, 0],
      [0x48, 0x89, 0x05, 0, 0, 0, 0],
      [0x8b, 0x05, 0, 0, 0, 0, 0],
    ])
      expect(encoded(bytes, 0x1000)).toEqual(bytes);
  });

  it('makes calls to one function alike, wherever they sit', () => {
    const page = new Uint8Array(PAGE).fill(0x90);
    const target = 0x2345;
    for (const at of [16, 700, 3000]) {
      page[at] = 0xe8;
      new DataView(page.buffer).setInt32(at + 1, target - (0x10000 + at + 5), true);
    }
    encodeX86Branches(page, 0x10000);
    const operands = [16, 700, 3000].map((at) => [...page.subarray(at + 1, at + 5)]);
    expect(new Set(operands.map(String)).size).toBe(1);
  });

  it('makes loads of one variable alike, wherever they sit', () => {
    const page = new Uint8Array(PAGE).fill(0x90);
    const variable = 0x7_0040;
    for (const [at, opcode] of [
      [40, 0x8b],
      [900, 0x8d],
      [2500, 0x8b],
    ] as const) {
      page.set([0x48, opcode, 0x05], at); // mov/lea rax, [rip+disp32]
      new DataView(page.buffer).setInt32(at + 3, variable - (0x20000 + at + 7), true);
    }
    encodeX86Branches(page, 0x20000);
    const operands = [40, 900, 2500].map((at) => [...page.subarray(at + 3, at + 7)]);
    expect(new Set(operands.map(String)).size).toBe(1);
  });

  it('leaves an operand alone whose top byte an unconverted opcode just before depends on', () => {
    // E8 at 0 has top byte 0x12 (not a near call); E8 at 2 would rewrite that byte, so it stays.
    const bytes = [0xe8, 0x01, 0xe8, 0x05, 0x12, 0x00, 0x00, 0x90];
    expect(encoded(bytes, 0)).toEqual(bytes);
    // Four bytes on, the opcode is free again.
    expect(encoded([0xe8, 0x01, 0x02, 0x03, 0x12, 0xe8, 0, 0, 0, 0], 0)).toEqual([
      0xe8, 0x01, 0x02, 0x03, 0x12, 0xe8, 0x0a, 0, 0, 0,
    ]);
    // The same for a LEA whose displacement's top byte (0x12) a call inside it would rewrite.
    const lea = [0x48, 0x8d, 0x05, 0x00, 0xe8, 0x00, 0x12, 0x00, 0x00, 0x90];
    expect(encoded(lea, 0)).toEqual(lea);
  });

  it('makes x86-64 code compress smaller (2 MiB of the node binary, as 4 KiB pages)', async () => {
    const code = nodeCode.subarray(0, 2 << 20);
    const filtered = Uint8Array.from(code);
    for (let at = 0; at < filtered.length; at += PAGE)
      encodeX86Branches(filtered.subarray(at, at + PAGE), at);
    const zstd = zstdCodec();
    const plain = (await zstd.compress(code, 9)).length;
    const transformed = (await zstd.compress(filtered, 9)).length;
    expect(transformed).toBeLessThan(0.9 * plain); // measured: −18 % (calls: its data lies beyond ±16 MiB)
  });
});

describe('raw records', () => {
  it('carry the page transformed from its address on the wire, and decode to the page', () => {
    const pages = [0, 1].map((i) => {
      const page = Uint8Array.from(nodeCode.subarray(i * PAGE, (i + 1) * PAGE));
      return { space: 'disk' as const, index: 70_000 + i, encoding: { kind: 'raw' as const, data: page } };
    });
    const wire = new Uint8Array(2 * (PAGE + 16));
    const steps = new RecordSteps();
    const length = pages.reduce((at, record) => encodeRecord(record, wire, at, steps), 0);
    const expected = Uint8Array.from(pages[1]?.encoding.data ?? []);
    encodeX86Branches(expected, 70_001 * PAGE);
    const second = Buffer.from(wire.subarray(0, length)).indexOf(Buffer.from(expected.subarray(0, 64)));
    expect(second).toBeGreaterThan(PAGE); // the second page's transformed bytes, after the first record
    expect(expected).not.toEqual(pages[1]?.encoding.data);
    const bounds = { memoryPages: 0, diskChunks: 80_000, baseMemoryPages: 0, baseDiskChunks: 0 };
    const back = decodeRecords(wire.slice(0, length), { space: 'disk', count: 2, bounds, what: 'test' });
    expect(
      back.map((r) => ({
        ...r,
        encoding: { kind: r.encoding.kind, data: Uint8Array.from((r.encoding as { data: Uint8Array }).data) },
      })),
    ).toEqual(pages);
  });
});

/** The largest executable section of an ELF64 little-endian file (its .text). */
function largestCodeSection(elf: Buffer): Buffer {
  const SHF_EXECINSTR = 4n;
  const sectionsAt = Number(elf.readBigUInt64LE(0x28));
  const size = elf.readUInt16LE(0x3a);
  let best = elf.subarray(0, 0);
  for (let i = 0; i < elf.readUInt16LE(0x3c); i++) {
    const header = sectionsAt + i * size;
    if ((elf.readBigUInt64LE(header + 8) & SHF_EXECINSTR) === 0n) continue;
    const offset = Number(elf.readBigUInt64LE(header + 24));
    const bytes = Number(elf.readBigUInt64LE(header + 32));
    if (bytes > best.length) best = elf.subarray(offset, offset + bytes);
  }
  return best;
}
