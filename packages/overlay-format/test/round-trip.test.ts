import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  createOverlayWriter,
  describeOverlay,
  type OverlayRecord,
  openOverlay,
  xzCodec,
  zstdCodec,
} from '../src/index.js';
import { manifestFields, plain, recordLists } from './fixtures.js';

async function collect(iterable: AsyncIterable<OverlayRecord>): Promise<OverlayRecord[]> {
  const out: OverlayRecord[] = [];
  for await (const r of iterable) out.push(r);
  return out;
}

describe('writer → reader', () => {
  const dir = testTempDir('overlay-format-');
  let n = 0;

  for (const [codec, workers] of [
    [zstdCodec(), 2],
    [zstdCodec(), 0],
    [xzCodec(), 2],
  ] as const) {
    it(`round-trips random record lists (${codec.name}, ${workers} workers)`, async () => {
      await fc.assert(
        fc.asyncProperty(recordLists, fc.integer({ min: 256, max: 20_000 }), async (records, target) => {
          const file = join(dir, `rt-${n++}.zip`);
          const writer = createOverlayWriter({ file, codec, level: 1, targetSegmentBytes: target, workers });
          for (const r of records) await writer.add(r);
          await writer.addBlob('device-state', new Uint8Array([1, 2, 3]));
          const summary = await writer.finish(manifestFields());
          const overlay = await openOverlay(file);
          try {
            expect(plain(await collect(overlay.records()))).toEqual(plain(records));
            for (const r of records) {
              const s = overlay.segmentOf(r.space, r.index);
              expect(s).toBeDefined();
              expect(
                (await overlay.readSegment(s as number)).some(
                  (x) => x.space === r.space && x.index === r.index,
                ),
              ).toBe(true);
            }
            expect(overlay.segmentOf('disk', 8191 + 1)).toBeUndefined();
            expect(Array.from(await overlay.readBlob('device-state'))).toEqual([1, 2, 3]);
            expect(overlay.manifest).toEqual(summary.manifest);
            const described = describeOverlay(overlay.manifest);
            for (const space of ['memory', 'disk'] as const) {
              const expected = records.filter((r) => r.space === space);
              expect(described.spaces[space].chunks).toBe(expected.length);
              for (const kind of ['zero', 'self', 'raw'] as const)
                expect(described.spaces[space].kinds[kind].count).toBe(
                  expected.filter((r) => r.encoding.kind === kind).length,
                );
            }
          } finally {
            await overlay.close();
          }
        }),
        { numRuns: codec.name === 'xz' ? 8 : 25 },
      );
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    }, 60_000);
  }

  it('writes an empty overlay', async () => {
    const file = join(dir, 'empty.zip');
    await createOverlayWriter({ file, workers: 0 }).finish(manifestFields());
    const overlay = await openOverlay(file);
    expect(overlay.segments).toEqual([]);
    expect(await collect(overlay.records())).toEqual([]);
    await overlay.close();
    expect(existsSync(file)).toBe(true);
  });
});
