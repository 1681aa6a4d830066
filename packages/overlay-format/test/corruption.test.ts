import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  bufferChunkSource,
  createOverlayWriter,
  OverlayFormatError,
  type OverlayRecord,
  openOverlay,
  PAGE_SIZE,
} from '../src/index.js';
import { manifestFields, plain } from './fixtures.js';

const file = join(testTempDir('overlay-format-'), 'victim.zip');
let bytes: Buffer;
let records: OverlayRecord[];

beforeAll(async () => {
  records = [];
  for (let i = 0; i < 30; i++)
    records.push({ space: 'memory', index: i * 3, encoding: { kind: 'raw', data: randomBytes(PAGE_SIZE) } });
  records.push({ space: 'disk', index: 4, encoding: { kind: 'self', space: 'memory', index: 3 } });
  records.push({ space: 'disk', index: 8, encoding: { kind: 'xor', delta: randomBytes(40) } });
  const writer = createOverlayWriter({ file, targetSegmentBytes: 16_384, workers: 0 });
  for (const r of records) await writer.add(r);
  await writer.addBlob('device-state', randomBytes(500));
  await writer.finish(manifestFields());
  bytes = readFileSync(file);
});

/** Everything the overlay holds, read through a source of `data` (decompressed on this thread or in workers). */
async function readAll(data: Uint8Array, workers = 0): Promise<OverlayRecord[]> {
  const overlay = await openOverlay(bufferChunkSource(data), { workers });
  const out: OverlayRecord[] = [];
  for await (const r of overlay.records()) out.push(r);
  await overlay.readBlob('device-state');
  await overlay.close();
  return out;
}

describe('damaged overlays', () => {
  // Worker start-up (~25 ms a pool) dominates, so most runs decompress on this thread.
  it.each([
    [0, 250],
    [2, 40],
  ])(
    'a flipped byte anywhere either changes nothing the reader returns or raises OverlayFormatError (%i workers)',
    async (workers, numRuns) => {
      expect(plain(await readAll(bytes, workers))).toEqual(plain(records));
      await fc.assert(
        fc.asyncProperty(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
          const damaged = Buffer.from(bytes);
          damaged[at] = (damaged[at] as number) ^ xor;
          const result = await readAll(damaged, workers).then(
            (r) => plain(r),
            (e: unknown) => e,
          );
          if (result instanceof Error) expect(result).toBeInstanceOf(OverlayFormatError);
          else expect(result).toEqual(plain(records));
        }),
        { numRuns },
      );
    },
    60_000,
  );

  it('a cut anywhere raises OverlayFormatError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(bytes.length - 1), async (length) => {
        await expect(readAll(bytes.subarray(0, length))).rejects.toBeInstanceOf(OverlayFormatError);
      }),
      { numRuns: 200 },
    );
  }, 60_000);
});
