import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  createOverlayWriter,
  type OverlayFormatErrorCode,
  type OverlayReader,
  openOverlay,
  PAGE_SIZE,
  zstdCodec,
} from '../src/index.js';
import { manifestFields } from './fixtures.js';
import { type RawEntry, readZip, writeZip } from './zip-tools.js';

const dir = testTempDir('overlay-format-');
const good = join(dir, 'good.zip');
let entries: RawEntry[];
let n = 0;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  const writer = createOverlayWriter({ file: good, targetSegmentBytes: 4096, workers: 0 });
  for (let i = 0; i < 40; i++)
    await writer.add({ space: 'memory', index: i, encoding: { kind: 'raw', data: randomBytes(PAGE_SIZE) } });
  await writer.add({ space: 'disk', index: 7, encoding: { kind: 'zero' } });
  await writer.addBlob('device-state', Buffer.from('state'));
  await writer.finish(manifestFields());
  entries = await readZip(good);
});

type Manifest = Record<string, unknown> & { segments: Record<string, unknown>[] };
const manifestOf = (list: RawEntry[]) =>
  JSON.parse((list.find((e) => e.name === 'manifest.json') as RawEntry).data.toString()) as Manifest;
const withManifest = (list: RawEntry[], edit: (m: Manifest) => void): RawEntry[] => {
  const m = manifestOf(list);
  edit(m);
  return list.map((e) => (e.name === 'manifest.json' ? { ...e, data: Buffer.from(JSON.stringify(m)) } : e));
};

async function rejection(
  promise: Promise<unknown>,
): Promise<{ code: OverlayFormatErrorCode; message: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ name: 'OverlayFormatError' });
  return error as { code: OverlayFormatErrorCode; message: string };
}

async function openBad(list: RawEntry[], patch?: (zip: Buffer) => void) {
  const file = join(dir, `bad-${n++}.zip`);
  await writeZip(file, list);
  if (patch !== undefined) {
    const bytes = readFileSync(file);
    patch(bytes);
    writeFileSync(file, bytes);
  }
  return rejection(openOverlay(file));
}

/** Opens fine, but reading segment 0 fails. */
async function readBad(list: RawEntry[]) {
  const file = join(dir, `bad-${n++}.zip`);
  await writeZip(file, list);
  const overlay: OverlayReader = await openOverlay(file);
  try {
    return await rejection(overlay.readSegment(0));
  } finally {
    await overlay.close();
  }
}

/** Renames entry "zzzzzzzzzzzzzzz" in place (local header and central directory) to a name yazl would refuse. */
const rename = (to: string) => (zip: Buffer) => {
  const from = Buffer.from('zzzzzzzzzzzzzzz');
  for (let at = zip.indexOf(from); at >= 0; at = zip.indexOf(from, at + 1)) Buffer.from(to).copy(zip, at);
};
const extra = (list: RawEntry[]) => [...list, { name: 'zzzzzzzzzzzzzzz', data: Buffer.from('x') }];

describe('openOverlay refuses', () => {
  it('a file that is not a zip, and a truncated zip', async () => {
    const notZip = join(dir, 'random.bin');
    writeFileSync(notZip, randomBytes(5000));
    expect((await rejection(openOverlay(notZip))).code).toBe('not-zip');
    const cut = join(dir, 'cut.zip');
    const bytes = readFileSync(good);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 300));
    expect((await rejection(openOverlay(cut))).code).toBe('truncated');
  });

  it('deflated entries', async () => {
    const e = await openBad(
      entries.map((x) => (x.name.startsWith('segments/') ? { ...x, compress: true } : x)),
    );
    expect(e).toMatchObject({ code: 'bad-entry', message: expect.stringMatching(/compression method 8/) });
  });

  it.each([
    ['../zzzzzzzzzzzz', /parent directory/],
    ['/zzzzzzzzzzzzzz', /absolute/],
    ['C:zzzzzzzzzzzzz', /absolute/],
    ['zzzzzzz\\zzzzzzz'.slice(0, 15), /backslash/],
    ['zzzzzzzzzzzzzz/', /directory/],
  ])('the unsafe entry name %s', async (name, why) => {
    expect(await openBad(extra(entries), rename(name))).toMatchObject({
      code: 'bad-entry',
      message: expect.stringMatching(why),
    });
  });

  it('duplicate, missing and extra entries', async () => {
    expect(await openBad(extra(entries), rename('segments/000000'))).toMatchObject({
      code: 'bad-entries',
      message: expect.stringMatching(/duplicate entry "segments\/000000"/),
    });
    expect(await openBad(entries.filter((e) => e.name !== 'segments/000001'))).toMatchObject({
      code: 'bad-entries',
      message: 'missing entry "segments/000001"',
    });
    expect(await openBad(entries.filter((e) => e.name !== 'manifest.json'))).toMatchObject({
      code: 'bad-entries',
    });
    expect(await openBad([...entries, { name: 'notes.txt', data: Buffer.from('hi') }])).toMatchObject({
      code: 'bad-entries',
      message: 'unexpected entry "notes.txt"',
    });
  });

  it('a manifest that is not JSON, fails the schema, or has another formatVersion', async () => {
    const notJson = entries.map((e) =>
      e.name === 'manifest.json' ? { ...e, data: Buffer.from('{oops') } : e,
    );
    expect(await openBad(notJson)).toMatchObject({
      code: 'bad-manifest',
      message: expect.stringMatching(/not JSON/),
    });
    expect(await openBad(withManifest(entries, (m) => delete m.base))).toMatchObject({
      code: 'bad-manifest',
      message: expect.stringMatching(/fails the schema: base/),
    });
    expect(await openBad(withManifest(entries, (m) => (m.formatVersion = 6)))).toMatchObject({
      code: 'bad-manifest',
      message: expect.stringMatching(/formatVersion 6 is not supported \(this reader knows 5\)$/),
    });
    for (const older of [1, 2, 3, 4])
      expect(await openBad(withManifest(entries, (m) => (m.formatVersion = older)))).toMatchObject({
        code: 'bad-manifest',
        message: expect.stringMatching(
          new RegExp(`formatVersion ${older} is not supported .*an older cloudlet wrote it`),
        ),
      });
    expect(await openBad(withManifest(entries, (m) => (m.unknownField = 1)))).toMatchObject({
      code: 'bad-manifest',
    });
  });

  it('sizes that disagree with the zip directory, and absurd declared sizes', async () => {
    const seg = (edit: (s: Record<string, unknown>) => void) =>
      withManifest(entries, (m) => edit(m.segments[0] as Record<string, unknown>));
    expect(await openBad(seg((s) => (s.compressedBytes = (s.compressedBytes as number) + 1)))).toMatchObject({
      code: 'bad-size',
    });
    expect(await openBad(seg((s) => (s.uncompressedBytes = 2 ** 40)))).toMatchObject({
      code: 'bad-manifest',
    });
    expect(await openBad(seg((s) => (s.records = 3000)))).toMatchObject({
      code: 'bad-manifest',
      message: expect.stringMatching(/more records than the bytes can hold/),
    });
    expect(await openBad(seg((s) => (s.uncompressedBytes = 200)))).toMatchObject({
      code: 'bad-size',
      message: expect.stringMatching(/more than 200 bytes can compress to/),
    });
    expect(
      await openBad(withManifest(entries, (m) => ((m.vm as Record<string, unknown>).diskBytes = 2 ** 60))),
    ).toMatchObject({ code: 'bad-manifest' });
  });

  it('a chunk index that does not match its hash or the segments', async () => {
    const flipped = entries.map((e) =>
      e.name === 'chunk-index.bin' ? { ...e, data: Buffer.from(e.data).fill(0x55, 6, 7) } : e,
    );
    expect(await openBad(flipped)).toMatchObject({ code: 'hash-mismatch' });
    const more = withManifest(
      entries,
      (m) => ((m.segments[0] as Record<string, number>).records as number)++,
    );
    expect(await openBad(more)).toMatchObject({
      code: 'bad-record',
      message: expect.stringMatching(/lists 40 memory chunks, the segments hold 41/),
    });
  });
});

describe('readSegment refuses', () => {
  const replaceSegment0 = async (records: Uint8Array, count: number) => {
    const packed = Buffer.from(await zstdCodec().compress(records, 3));
    return withManifest(
      entries.map((e) => (e.name === 'segments/000000' ? { ...e, data: packed } : e)),
      (m) =>
        Object.assign(m.segments[0] as object, {
          sha256: sha(packed),
          compressedBytes: packed.length,
          uncompressedBytes: records.length,
          records: count,
        }),
    );
  };

  it('a segment whose bytes do not match its sha256', async () => {
    const list = entries.map((e) =>
      e.name === 'segments/000000' ? { ...e, data: Buffer.from(e.data).fill(1, 10, 11) } : e,
    );
    expect(await readBad(list)).toMatchObject({ code: 'hash-mismatch' });
  });

  it('a segment that decompresses to another size than declared', async () => {
    const list = withManifest(
      entries,
      (m) => (((m.segments[0] as Record<string, number>).uncompressedBytes as number) -= 1),
    );
    expect(await readBad(list)).toMatchObject({ code: 'bad-compressed-data' });
  });

  it('malformed records: bad kind, index out of range, wrong payload length, wrong space, wrong count', async () => {
    const first = (await readZip(good)).length > 0; // segment 0 holds memory pages 0..; chunk index lists them
    expect(first).toBe(true);
    const zeroAt = (i: number) => [0x00, i];
    expect(await readBad(await replaceSegment0(Uint8Array.from([0x0f, 0]), 1))).toMatchObject({
      code: 'bad-record',
      message: expect.stringMatching(/bad flags 0xf/),
    });
    expect(await readBad(await replaceSegment0(Uint8Array.from([0x00, 0x80, 0x80, 0x01]), 1))).toMatchObject({
      code: 'bad-record',
      message: expect.stringMatching(/memory index 8192 outside 0..4095/),
    });
    expect(
      await readBad(await replaceSegment0(Uint8Array.from([0x06, 0, 100, ...new Uint8Array(100)]), 1)),
    ).toMatchObject({
      code: 'bad-record',
      message: expect.stringMatching(/raw payload of 100 bytes/),
    });
    expect(await readBad(await replaceSegment0(Uint8Array.from([0x10, 0]), 1))).toMatchObject({
      message: expect.stringMatching(/disk record in a memory segment/),
    });
    expect(
      await readBad(await replaceSegment0(Uint8Array.from([0x01, 0, 0xfe, 0xff, 0x07]), 1)),
    ).toMatchObject({
      message: expect.stringMatching(/base-memory reference 65535 outside/),
    });
    expect(await readBad(await replaceSegment0(Uint8Array.from([0x04, 0, 5, 1, 2]), 1))).toMatchObject({
      message: expect.stringMatching(/ends inside a 5-byte payload/),
    });
    // Segment 0 holds memory chunk 0; memory chunk 1 is in segment 1, so a reference to it points forward.
    expect(await readBad(await replaceSegment0(Uint8Array.from([0x03, 0, 2]), 1))).toMatchObject({
      message: expect.stringMatching(/refers to memory chunk 1, which comes later/),
    });
    expect(await readBad(await replaceSegment0(Uint8Array.from([0x03, 0, 0]), 1))).toMatchObject({
      message: expect.stringMatching(/refers to memory chunk 0, which comes later/),
    });
    expect(await readBad(await replaceSegment0(Uint8Array.from([0x23, 0, 0]), 1))).toMatchObject({
      message: expect.stringMatching(/refers to disk chunk 0, not in the overlay/),
    });
    expect(
      await readBad(await replaceSegment0(Uint8Array.from([...zeroAt(0), ...zeroAt(1)]), 1)),
    ).toMatchObject({
      message: expect.stringMatching(/more than 1 records/),
    });
  });
});
