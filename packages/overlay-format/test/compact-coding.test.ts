import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { decodeChunkIndex, encodeChunkIndex, type SpaceIndex } from '../src/chunk-index.js';
import { createOverlayWriter, type OverlayRecord, openOverlay } from '../src/index.js';
import { decodeRecords, encodeRecord, RecordSteps } from '../src/record-codec.js';
import { manifestFields } from './fixtures.js';

const space = (pairs: [number, number][]): SpaceIndex => ({
  indexes: Float64Array.from(pairs.map(([i]) => i)),
  segments: Uint32Array.from(pairs.map(([, s]) => s)),
});
const bounds = {
  memoryPages: 1 << 20,
  diskChunks: 1 << 20,
  baseMemoryPages: 1 << 20,
  baseDiskChunks: 1 << 20,
};

function wire(records: OverlayRecord[]): Uint8Array {
  const out = new Uint8Array(records.length * 32);
  const steps = new RecordSteps();
  let at = 0;
  for (const r of records) at = encodeRecord(r, out, at, steps);
  return out.subarray(0, at);
}

describe('chunk index runs', () => {
  it('round-trips runs split by gaps and by segment changes inside consecutive indexes', () => {
    const memory = space([
      [0, 0],
      [1, 0],
      [2, 1],
      [3, 1],
      [10, 1],
      [11, 2],
      [2 ** 39, 3],
    ]);
    const disk = space([[5, 3]]);
    const decoded = decodeChunkIndex(encodeChunkIndex({ memory, disk }), { memory: 7, disk: 1, segments: 4 });
    expect(Array.from(decoded.memory.indexes)).toEqual(Array.from(memory.indexes));
    expect(Array.from(decoded.memory.segments)).toEqual(Array.from(memory.segments));
    expect(decoded.segmentOf('memory', 3)).toBe(1);
    expect(decoded.segmentOf('memory', 4)).toBeUndefined();
    expect(decoded.segmentOf('disk', 5)).toBe(3);
  });

  it('lists 100,000 chunks in four segments in a few bytes', () => {
    const pairs = Array.from({ length: 100_000 }, (_, i): [number, number] => [
      i + (i >= 50_000 ? 7 : 0),
      i >> 15,
    ]);
    const bytes = encodeChunkIndex({ memory: space(pairs), disk: space([]) });
    expect(bytes.length).toBeLessThan(40);
    expect(
      decodeChunkIndex(bytes, { memory: 100_000, disk: 0, segments: 4 }).segmentOf('memory', 99_999 + 7),
    ).toBe(3);
  });

  it('refuses a run past its count and a chunk beyond the cap', () => {
    // "CLIX", version 2, memory: count 2, run (gap 0, length 3, segment 0)
    const past = Uint8Array.from([0x43, 0x4c, 0x49, 0x58, 2, 2, 0, 2, 0, 0]);
    expect(() => decodeChunkIndex(past, { memory: 2, disk: 0, segments: 1 })).toThrow(
      /run past its 2 memory chunks/,
    );
    const huge = [0x43, 0x4c, 0x49, 0x58, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0];
    expect(() => decodeChunkIndex(Uint8Array.from(huge), { memory: 1, disk: 0, segments: 1 })).toThrow(
      /beyond the cap/,
    );
  });
});

describe('record steps', () => {
  it('codes consecutive chunks and consecutive references as zero steps, in any record order', () => {
    const copies: OverlayRecord[] = Array.from({ length: 1000 }, (_, i) => ({
      space: 'disk',
      index: 500 + i,
      encoding: { kind: 'base-disk', index: 9000 + i },
    }));
    const bytes = wire(copies);
    // The first record: flags, index step 1000 (2 bytes), reference step 18000 (3 bytes); then flags, 0, 0.
    expect(bytes.length).toBe(6 + 999 * 3);
    expect(bytes.subarray(6).every((b, i) => (i % 3 === 0 ? b === 0x12 : b === 0))).toBe(true);
    const shuffled: OverlayRecord[] = [
      { space: 'memory', index: 7, encoding: { kind: 'self', space: 'disk', index: 3 } },
      { space: 'memory', index: 2, encoding: { kind: 'base-memory', index: 0 } },
      { space: 'memory', index: 9, encoding: { kind: 'self', space: 'disk', index: 1 } },
      { space: 'memory', index: 0, encoding: { kind: 'self', space: 'memory', index: 2 } },
    ];
    const back = decodeRecords(wire(shuffled), { space: 'memory', count: 4, bounds, what: 'test' });
    expect(back).toEqual(shuffled);
  });

  it('refuses a step that lands below zero', () => {
    const expected = { space: 'memory' as const, count: 1, bounds, what: 'segment' };
    expect(() => decodeRecords(Uint8Array.from([0x00, 0x01]), expected)).toThrow(/memory index -1 outside/);
    expect(() => decodeRecords(Uint8Array.from([0x02, 0x00, 0x03]), expected)).toThrow(
      /base-disk reference -2 outside/,
    );
  });

  it('keeps a copied file cheap in a written overlay', async () => {
    const file = join(testTempDir('overlay-format-'), 'copies.zip');
    const writer = createOverlayWriter({ file, workers: 0 });
    for (let i = 0; i < 8000; i++)
      await writer.add({ space: 'disk', index: i, encoding: { kind: 'base-disk', index: 100 + i } });
    const { manifest, bytes } = await writer.finish(manifestFields());
    expect(manifest.segments.reduce((n, s) => n + s.compressedBytes, 0)).toBeLessThan(200);
    expect(manifest.chunkIndex.bytes).toBeLessThan(20);
    expect(bytes).toBeLessThan(4096);
    const reader = await openOverlay(file);
    const records: OverlayRecord[] = [];
    for await (const r of reader.records()) records.push(r);
    await reader.close();
    expect(records.at(-1)).toEqual({
      space: 'disk',
      index: 7999,
      encoding: { kind: 'base-disk', index: 8099 },
    });
  });
});
