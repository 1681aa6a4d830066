import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  bufferChunkSource,
  type OverlayFormatErrorCode,
  type OverlayRecord,
  type OverlayUpload,
  openOverlay,
  openOverlayUpload,
} from '../src/index.js';
import { plain } from './fixtures.js';
import { pieces, writeUploadFixture } from './upload-fixtures.js';
import { type RawEntry, readZip, writeZip } from './zip-tools.js';

let file: string;
let bytes: Buffer;
let entries: RawEntry[];
beforeAll(async () => {
  ({ file, bytes } = await writeUploadFixture());
  entries = await readZip(file);
});

const MAX = 1 << 30;
const failure = (code: OverlayFormatErrorCode, message: RegExp) => ({
  name: 'OverlayFormatError',
  code,
  message: expect.stringMatching(message),
});
const zipOf = async (list: RawEntry[], patch?: (zip: Buffer) => void) => {
  const path = join(testTempDir('overlay-format-'), 'crafted.zip');
  await writeZip(path, list);
  const out = readFileSync(path);
  patch?.(out);
  return out;
};
/** Opens `data` as an upload and expects it refused with `code`; the spool directory ends up empty. */
async function refused(data: Uint8Array, code: OverlayFormatErrorCode, message: RegExp, maxBytes = MAX) {
  const spoolDir = testTempDir('overlay-format-');
  await expect(openOverlayUpload(pieces(data).body, { spoolDir, maxBytes })).rejects.toMatchObject(
    failure(code, message),
  );
  expect(readdirSync(spoolDir)).toEqual([]);
}
/** Opens fine; the last segment and `done` then fail with `code`. */
async function failsLater(
  upload: OverlayUpload,
  spoolDir: string,
  code: OverlayFormatErrorCode,
  message: RegExp,
  /** Whether the last segment's read fails too: not when the error comes only after its bytes. */
  lastSegment: 'fails' | 'reads' | 'either' = 'fails',
) {
  const last = upload.reader.readSegment(upload.reader.segments.length - 1);
  const lastRead =
    lastSegment === 'fails'
      ? expect(last).rejects.toMatchObject({ code })
      : lastSegment === 'reads'
        ? last
        : last.catch((e: unknown) => expect(e).toMatchObject({ code }));
  await expect(upload.done).rejects.toMatchObject(failure(code, message));
  await lastRead;
  expect(readdirSync(spoolDir)).toEqual([]);
  await upload.reader.close();
}

describe('openOverlayUpload refuses', () => {
  it('a body that ends early, saying how many bytes arrived', async () => {
    await refused(bytes.subarray(0, 100), 'truncated', /ended after 100 bytes/);
    await refused(bytes.subarray(0, 0), 'not-zip', /not a zip/);
    const directory = bytes.indexOf(Buffer.from('PK\x01\x02', 'latin1'));
    const lastSegment = bytes.lastIndexOf(Buffer.from('segments/'), directory);
    for (const [cut, inSegment] of [
      [bytes.length - 10, 'reads'], // in the central directory
      [lastSegment + 100, 'fails'],
    ] as const) {
      const spoolDir = testTempDir('overlay-format-');
      const upload = await openOverlayUpload(pieces(bytes.subarray(0, cut)).body, {
        spoolDir,
        maxBytes: MAX,
      });
      await failsLater(upload, spoolDir, 'truncated', new RegExp(`ended after ${cut} bytes`), inSegment);
    }
  });

  it('more than maxBytes: a declared total at once, a running count as soon as it is passed', async () => {
    const manifest = JSON.parse((entries[0] as RawEntry).data.toString()) as {
      segments: { compressedBytes: number }[];
    };
    const declared = manifest.segments.reduce((n, s) => n + s.compressedBytes, 0);
    const spoolDir = testTempDir('overlay-format-');
    const body = pieces(bytes);
    await expect(openOverlayUpload(body.body, { spoolDir, maxBytes: declared })).rejects.toMatchObject(
      failure('too-large', /declares \d+ bytes of entries, above the upload's \d+-byte limit/),
    );
    expect(body.sent()).toBeLessThan(bytes.length / 2);
    expect(readdirSync(spoolDir)).toEqual([]);
    const upload = await openOverlayUpload(pieces(bytes).body, { spoolDir, maxBytes: bytes.length - 1 });
    await failsLater(
      upload,
      spoolDir,
      'too-large',
      new RegExp(`larger than the ${bytes.length - 1}-byte limit`),
      'either', // the bytes beyond the limit are the central directory's
    );
  });

  it('a body that stops sending for idleTimeoutMs', async () => {
    const spoolDir = testTempDir('overlay-format-');
    const upload = await openOverlayUpload(pieces(bytes, { stallAt: bytes.length - 3000 }).body, {
      spoolDir,
      maxBytes: MAX,
      idleTimeoutMs: 100,
    });
    await failsLater(upload, spoolDir, 'timeout', /no data for 100 ms/);
  });

  it('a manifest-last (old layout) zip, which openOverlay still reads', async () => {
    const [manifest, chunkIndex, ...rest] = entries as [RawEntry, RawEntry, ...RawEntry[]];
    const old = await zipOf([...rest.reverse(), chunkIndex, manifest]);
    await refused(
      old,
      'not-streamable',
      /^upload is not a streamable overlay \(manifest.json must be the first entry\); re-create it with this version$/,
    );
    const records = async (source: string | Uint8Array) => {
      const overlay = await openOverlay(typeof source === 'string' ? source : bufferChunkSource(source), {
        workers: 0,
      });
      const out: unknown[] = [];
      for await (const r of overlay.records()) out.push(r);
      await overlay.close();
      return plain(out as OverlayRecord[]);
    };
    expect(await records(old)).toEqual(await records(file));
  });

  it('unsafe names, deflated entries, data descriptors, entries out of order', async () => {
    const [manifest, chunkIndex, ...rest] = entries as [RawEntry, RawEntry, ...RawEntry[]];
    const slip = await zipOf(
      [manifest, { name: 'zzzzzzzzzzzzzzz', data: Buffer.from('x') }, chunkIndex, ...rest],
      (zip) => {
        const from = Buffer.from('zzzzzzzzzzzzzzz');
        for (let at = zip.indexOf(from); at >= 0; at = zip.indexOf(from, at + 1))
          Buffer.from('../../etc/pwned').copy(zip, at);
      },
    );
    await refused(slip, 'bad-entry', /unsafe entry name "..\/..\/etc\/pwned"/);
    await refused(
      await zipOf([manifest, { ...chunkIndex, compress: true }, ...rest]),
      'bad-entry',
      /compression method 8/,
    );
    const descriptor = Buffer.from(bytes);
    descriptor[6] = (descriptor[6] as number) | 0x08;
    await refused(descriptor, 'not-streamable', /data descriptor/);
    await refused(await zipOf([manifest, ...rest, chunkIndex]), 'not-streamable', /streaming order/);
  });

  it('a central directory that differs from the local headers, or lists more', async () => {
    const crc = Buffer.from(bytes);
    const name = crc.lastIndexOf(Buffer.from('chunk-index.bin'));
    crc[name - 46 + 16] = (crc[name - 46 + 16] as number) ^ 1;
    const spoolDir = testTempDir('overlay-format-');
    const upload = await openOverlayUpload(pieces(crc).body, { spoolDir, maxBytes: MAX });
    await expect(upload.done).rejects.toMatchObject(
      failure('bad-entries', /"chunk-index.bin" differs from its local header/),
    );
    expect(readdirSync(spoolDir)).toEqual([]);
    await upload.reader.close();
    const extra = await zipOf([...entries, { name: 'extra', data: Buffer.from('x') }]);
    const second = await openOverlayUpload(pieces(extra).body, { spoolDir, maxBytes: MAX });
    await expect(second.done).rejects.toMatchObject({ code: 'bad-entries' });
    await second.reader.close();
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('a damaged segment, as the file reader does', async () => {
    const damaged = Buffer.from(bytes);
    const at = damaged.indexOf(
      Buffer.from('segments/000001'),
      damaged.indexOf(Buffer.from('chunk-index.bin')),
    );
    damaged[at + 40] = (damaged[at + 40] as number) ^ 0xff;
    const spoolDir = testTempDir('overlay-format-');
    const upload = await openOverlayUpload(pieces(damaged).body, { spoolDir, maxBytes: MAX, workers: 0 });
    const expected = await openOverlay(file).then(async (o) => {
      const r = plain(await o.readSegment(0));
      await o.close();
      return r;
    });
    expect(plain(await upload.reader.readSegment(0))).toEqual(expected);
    await expect(upload.reader.readSegment(1)).rejects.toMatchObject(
      failure(
        'hash-mismatch',
        /^segment 1 \("segments\/000001"\): entry "segments\/000001" does not match its sha256/,
      ),
    );
    await upload.done;
    await upload.reader.close();
    expect(readdirSync(spoolDir)).toEqual([]);
  });
});
