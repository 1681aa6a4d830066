import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { zstdCodec } from '../src/codecs/zstd-codec.js';
import { decodeRecords, encodeRecord, RecordSteps } from '../src/record-codec.js';
import type { OverlayRecord } from '../src/records.js';
import { chooseStride, decodeStrideDelta, encodeStrideDelta } from '../src/stride-delta.js';

const PAGE = 4096;
const STRIDE_BIT = 0x40;

/** A page of 96-byte records as a heap holds them: a pointer that grows by 96, a counter, its digits. */
function recordPage(first: number): Uint8Array {
  const page = new Uint8Array(PAGE);
  const view = new DataView(page.buffer);
  for (let at = 0, n = first; at + 96 <= PAGE; at += 96, n++) {
    view.setBigUint64(at + 16, BigInt(0x3f4_0000 + n * 96), true);
    view.setUint32(at + 24, n, true);
    page.set(Buffer.from(`entry-${n}-${(n * 7919) % 100_003}`), at + 48);
    view.setUint8(at + 40, 0x21);
  }
  return page;
}

/** A page of lines of decimal numbers (as `seq` writes). */
const numberLines = (first: number) =>
  Uint8Array.from(
    Buffer.from(Array.from({ length: 1000 }, (_, i) => `${first + i}\n`).join('')).subarray(0, PAGE),
  );

describe('stride transform of raw pages', () => {
  it('decodes back to the original for any bytes and any stride', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: PAGE }),
        fc.integer({ min: 1, max: PAGE - 1 }),
        (bytes, stride) => {
          const page = Uint8Array.from(bytes);
          encodeStrideDelta(page, stride);
          decodeStrideDelta(page, stride);
          expect(page).toEqual(bytes);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('finds the record size of a page of records', () => {
    expect(chooseStride(recordPage(84_986))).toBe(96);
  });

  it('leaves random, zero and single-byte pages alone', () => {
    expect(chooseStride(randomBytes(PAGE))).toBe(0);
    expect(chooseStride(new Uint8Array(PAGE))).toBe(0);
    expect(chooseStride(new Uint8Array(PAGE).fill(0x90))).toBe(0);
  });

  it('makes pages of records compress much smaller (zstd-19, 64 pages)', async () => {
    const pages = Array.from({ length: 64 }, (_, i) => recordPage(84_986 + 42 * i));
    const plain = Buffer.concat(pages);
    const coded = Buffer.concat(
      pages.map((page) => {
        const copy = Uint8Array.from(page);
        encodeStrideDelta(copy, chooseStride(page));
        return copy;
      }),
    );
    const zstd = zstdCodec();
    const before = (await zstd.compress(plain, 19)).length;
    const after = (await zstd.compress(coded, 19)).length;
    expect(after).toBeLessThan(0.6 * before); // measured on an awk heap in a guest: 1.10 MB → 0.37 MB
  });
});

describe('raw records with the stride transform', () => {
  const bounds = { memoryPages: 100, diskChunks: 0, baseMemoryPages: 0, baseDiskChunks: 0 };
  const raw = (index: number, data: Uint8Array): OverlayRecord => ({
    space: 'memory',
    index,
    encoding: { kind: 'raw', data },
  });

  it('carry the flag and the stride, and decode to the page', () => {
    const records = [raw(7, recordPage(1_000)), raw(8, randomBytes(PAGE)), raw(9, numberLines(5_000))];
    const wire = new Uint8Array(records.length * (PAGE + 16));
    const steps = new RecordSteps();
    const length = records.reduce((at, record) => encodeRecord(record, wire, at, steps), 0);
    // First record: flags (raw, strided), index step, payload length 4096 (2 bytes), stride 96.
    expect([...wire.subarray(0, 5)]).toEqual([0x06 | STRIDE_BIT, 14, 0x80, 0x20, 96]);
    const second = 5 + PAGE;
    expect(wire[second]).toBe(0x06); // random: no stride, the x86 transform as before
    expect(((wire[second + 1 + 1 + 2 + PAGE] as number) & STRIDE_BIT) !== 0).toBe(true); // lines of numbers
    const back = decodeRecords(wire.slice(0, length), { space: 'memory', count: 3, bounds, what: 'test' });
    const pages = (list: OverlayRecord[]) =>
      list.map((r) => Buffer.from((r.encoding as { data: Uint8Array }).data));
    expect(pages(back)).toEqual(pages(records));
  });

  it('are refused with a stride of 0 or of a page or more, and the flag on another kind', () => {
    const decode = (bytes: number[]) => () =>
      decodeRecords(Uint8Array.from(bytes), { space: 'memory', count: 1, bounds, what: 'segment 0' });
    const payload = [...new Uint8Array(PAGE)];
    expect(decode([0x06 | STRIDE_BIT, 0, 0x80, 0x20, 0, ...payload])).toThrow(/raw page with stride 0/);
    expect(decode([0x06 | STRIDE_BIT, 0, 0x80, 0x20, 0x80, 0x20, ...payload])).toThrow(
      /raw page with stride 4096/,
    );
    expect(decode([0x00 | STRIDE_BIT, 0])).toThrow(/bad flags 0x40/);
    expect(decode([0x80, 0])).toThrow(/bad flags 0x80/);
  });
});
