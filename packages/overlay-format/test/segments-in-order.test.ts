import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  bufferChunkSource,
  type ChunkSource,
  createOverlayWriter,
  type OverlayRecord,
  openOverlay,
  PAGE_SIZE,
} from '../src/index.js';
import { manifestFields, plain } from './fixtures.js';

const file = join(testTempDir('overlay-format-'), 'many-segments.zip');
let bytes: Buffer;
const written: OverlayRecord[] = [];

beforeAll(async () => {
  const writer = createOverlayWriter({ file, targetSegmentBytes: 8192, workers: 0 });
  for (let i = 0; i < 40; i++)
    written.push({ space: 'memory', index: i, encoding: { kind: 'raw', data: randomBytes(PAGE_SIZE) } });
  for (let i = 0; i < 40; i++) written.push({ space: 'disk', index: i, encoding: { kind: 'zero' } });
  for (const r of written) await writer.add(r);
  await writer.finish(manifestFields());
  bytes = readFileSync(file);
});

/** A source whose reads take a while, counting how many are outstanding at once. */
function slowSource(data: Uint8Array) {
  const inner = bufferChunkSource(data);
  const stats = { outstanding: 0, most: 0 };
  const source: ChunkSource = {
    size: () => inner.size(),
    async read(offset, length) {
      stats.outstanding++;
      stats.most = Math.max(stats.most, stats.outstanding);
      await new Promise((resolve) => setTimeout(resolve, 2));
      stats.outstanding--;
      return inner.read(offset, length);
    },
  };
  return { source, stats };
}

describe('reader.segmentsInOrder', () => {
  it.each([0, 2])(
    'yields every segment in file order with %i workers, records() the same',
    async (workers) => {
      const overlay = await openOverlay(file, { workers });
      expect(overlay.segments.length).toBeGreaterThan(4);
      const seen: number[] = [];
      const records: OverlayRecord[] = [];
      for await (const { index, info, records: rs } of overlay.segmentsInOrder({ inFlight: 3 })) {
        seen.push(index);
        expect(info).toBe(overlay.segments[index]);
        expect(rs).toHaveLength(info.records);
        records.push(...rs);
      }
      expect(seen).toEqual([...overlay.segments.keys()]);
      expect(plain(records)).toEqual(plain(written));
      const again: OverlayRecord[] = [];
      for await (const r of overlay.records()) again.push(r);
      expect(plain(again)).toEqual(plain(written));
      await overlay.close();
    },
  );

  it('keeps up to inFlight segment reads running', async () => {
    const { source, stats } = slowSource(bytes);
    const overlay = await openOverlay(source, { workers: 0 });
    stats.most = 0;
    for await (const _ of overlay.segmentsInOrder({ inFlight: 4 }))
      await new Promise((r) => setTimeout(r, 5));
    expect(stats.most).toBe(4);
    await overlay.close();
  });

  it('names the segment index and entry of a damaged segment, and reaches it after the ones before', async () => {
    const overlay = await openOverlay(bufferChunkSource(bytes), { workers: 2 });
    const victim = overlay.segments[3];
    if (victim === undefined) throw new Error('fixture too small');
    const damaged = Buffer.from(bytes);
    // Its local header's name (the manifest, first in the zip, names it too), then inside its data.
    const localHeaders = bytes.indexOf(Buffer.from('chunk-index.bin'));
    const at = bytes.indexOf(Buffer.from(victim.entry), localHeaders) + victim.entry.length + 10;
    damaged[at] = (damaged[at] as number) ^ 0xff;
    await overlay.close();
    const bad = await openOverlay(bufferChunkSource(damaged), { workers: 2 });
    const reached: number[] = [];
    const error = await (async () => {
      for await (const s of bad.segmentsInOrder()) reached.push(s.index);
    })().catch((e: unknown) => e);
    expect(reached).toEqual([0, 1, 2]);
    expect(error).toMatchObject({
      name: 'OverlayFormatError',
      code: 'hash-mismatch',
      message: `segment 3 ("${victim.entry}"): entry "${victim.entry}" does not match its sha256 in the manifest`,
    });
    await bad.close();
  });

  it('after a break nothing reads on; after close() reads are refused and the iteration ends with invalid-use', async () => {
    const { source, stats } = slowSource(bytes);
    const overlay = await openOverlay(source, { workers: 2 });
    for await (const s of overlay.segmentsInOrder({ inFlight: 4 })) if (s.index === 1) break;
    expect(stats.outstanding).toBe(0);

    const iteration = overlay.segmentsInOrder()[Symbol.asyncIterator]();
    await iteration.next();
    await overlay.close();
    await expect(iteration.next()).rejects.toMatchObject({ code: 'invalid-use' });
    await expect(overlay.readSegment(0)).rejects.toMatchObject({ code: 'invalid-use' });
  });

  it('refuses nonsense workers and inFlight values', async () => {
    await expect(openOverlay(file, { workers: -1 })).rejects.toThrow(RangeError);
    const overlay = await openOverlay(file, { workers: 0 });
    await expect(overlay.segmentsInOrder({ inFlight: 0 })[Symbol.asyncIterator]().next()).rejects.toThrow(
      RangeError,
    );
    await overlay.close();
  });
});
