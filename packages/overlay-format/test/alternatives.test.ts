import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  createOverlayWriter,
  type OverlayRecord,
  openOverlay,
  PAGE_SIZE,
  type RecordEncoding,
} from '../src/index.js';
import { manifestFields } from './fixtures.js';

const dir = testTempDir('overlay-format-');
let n = 0;
/** A page of one repeated 16-byte line: compresses to almost nothing. */
const textPage = (i: number) => new Uint8Array(PAGE_SIZE).fill(0x30 + (i % 10));

async function written(
  entries: { record: OverlayRecord; alternative?: RecordEncoding }[],
  workers = 2,
): Promise<{ records: OverlayRecord[]; statistics: unknown; segments: number }> {
  const file = join(dir, `alt-${n++}.zip`);
  const writer = createOverlayWriter({ file, workers, targetSegmentBytes: 16 * 1024 });
  for (const { record, alternative } of entries) await writer.add(record, alternative);
  const { manifest } = await writer.finish(manifestFields());
  const reader = await openOverlay(file);
  const records: OverlayRecord[] = [];
  for await (const r of reader.records()) records.push(r);
  await reader.close();
  return { records, statistics: manifest.statistics, segments: manifest.segments.length };
}

describe('alternative encodings', () => {
  it('keeps, per segment, whichever variant compresses smaller, and counts what it kept', async () => {
    // Memory pages 0-19: incompressible "deltas" whose raw pages are text (the alternative wins);
    // disk chunks 0-19: small XOR deltas whose raw chunks are random (the deltas win).
    const entries = [
      ...Array.from({ length: 20 }, (_, i) => ({
        record: { space: 'memory', index: i, encoding: { kind: 'vcdiff', delta: randomBytes(3000) } },
        alternative: { kind: 'raw', data: textPage(i) },
      })),
      ...Array.from({ length: 20 }, (_, i) => ({
        record: {
          space: 'disk',
          index: i,
          encoding: { kind: 'xor', delta: new Uint8Array(40).fill(i) },
        },
        alternative: { kind: 'raw', data: randomBytes(PAGE_SIZE) },
      })),
    ] as { record: OverlayRecord; alternative: RecordEncoding }[];
    for (const workers of [2, 0]) {
      const { records, statistics, segments } = await written(entries, workers);
      expect(segments).toBeGreaterThan(1);
      expect(records.map((r) => [r.space, r.index])).toEqual(
        entries.map((e) => [e.record.space, e.record.index]),
      );
      expect(records.slice(0, 20).every((r) => r.encoding.kind === 'raw')).toBe(true);
      expect(records.slice(20).every((r) => r.encoding.kind === 'xor')).toBe(true);
      expect(records[3]?.encoding).toEqual({ kind: 'raw', data: textPage(3) });
      expect(statistics).toMatchObject({
        memory: { raw: { count: 20 }, vcdiff: { count: 0 } },
        disk: { xor: { count: 20 }, raw: { count: 0 } },
      });
    }
  });

  it('a segment with no alternative is written once, as given', async () => {
    const { records } = await written([
      { record: { space: 'memory', index: 0, encoding: { kind: 'vcdiff', delta: randomBytes(100) } } },
      { record: { space: 'memory', index: 1, encoding: { kind: 'zero' } } },
    ]);
    expect(records.map((r) => r.encoding.kind)).toEqual(['vcdiff', 'zero']);
  });

  it('refuses an alternative for a reference or a zero chunk, or a malformed one', async () => {
    const cases: [OverlayRecord, RecordEncoding, RegExp][] = [
      [
        { space: 'memory', index: 0, encoding: { kind: 'zero' } },
        { kind: 'raw', data: textPage(0) },
        /zero \/ raw/,
      ],
      [
        { space: 'memory', index: 0, encoding: { kind: 'raw', data: textPage(0) } },
        { kind: 'base-memory', index: 1 },
        /raw \/ base-memory/,
      ],
      [
        { space: 'memory', index: 0, encoding: { kind: 'xor', delta: new Uint8Array(4) } },
        { kind: 'raw', data: new Uint8Array(10) },
        /raw data of 10 bytes/,
      ],
    ];
    for (const [record, alternative, message] of cases) {
      const writer = createOverlayWriter({ file: join(dir, `bad-${n++}.zip`), workers: 0 });
      await expect(writer.add(record, alternative)).rejects.toMatchObject({ code: 'invalid-use', message });
    }
  });
});
