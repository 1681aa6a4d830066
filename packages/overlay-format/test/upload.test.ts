import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { type OverlayReader, type OverlayRecord, openOverlay, openOverlayUpload } from '../src/index.js';
import { plain } from './fixtures.js';
import { pieces, writeUploadFixture } from './upload-fixtures.js';

let file: string;
let bytes: Buffer;
beforeAll(async () => {
  ({ file, bytes } = await writeUploadFixture());
});

const MAX = 1 << 30;
async function all(reader: OverlayReader): Promise<OverlayRecord[]> {
  const out: OverlayRecord[] = [];
  for await (const r of reader.records()) out.push(r);
  return out;
}

describe('openOverlayUpload', () => {
  it('reads a segment before the last bytes are sent, and gives the records openOverlay gives on the file', async () => {
    const spoolDir = testTempDir('overlay-format-');
    const events: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const body = pieces(bytes, {
      beforeLast: async () => {
        // Holds the final piece until segment 0 is read (or 5 s, which fails the order check below).
        await Promise.race([gate, new Promise((r) => setTimeout(r, 5000))]);
        events.push('last piece sent');
      },
    });
    let reported = 0;
    const upload = await openOverlayUpload(body.body, {
      spoolDir,
      maxBytes: MAX,
      workers: 0,
      onBytes: (n) => (reported = n),
    });
    expect(upload.bytesReceived()).toBeLessThan(bytes.length);
    expect(readdirSync(spoolDir)).toHaveLength(1);
    const first = await upload.reader.readSegment(0);
    events.push('segment 0 read');
    release();
    const records = await all(upload.reader);
    await upload.done;
    expect(events).toEqual(['segment 0 read', 'last piece sent']);
    expect(upload.bytesReceived()).toBe(bytes.length);
    expect(reported).toBe(bytes.length);

    const overlay = await openOverlay(file, { workers: 0 });
    expect(plain(first)).toEqual(plain(await overlay.readSegment(0)));
    expect(plain(records)).toEqual(plain(await all(overlay)));
    expect(upload.reader.manifest).toEqual(overlay.manifest);
    expect(Buffer.from(await upload.reader.readBlob('device-state'))).toEqual(
      Buffer.from(await overlay.readBlob('device-state')),
    );
    await overlay.close();
    await upload.reader.close();
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('keeps the finished spool as keepFile when asked', async () => {
    const spoolDir = testTempDir('overlay-format-');
    const keepFile = join(spoolDir, 'kept.zip');
    const upload = await openOverlayUpload(pieces(bytes).body, { spoolDir, maxBytes: MAX, keepFile });
    await upload.done;
    await upload.reader.close();
    expect(readdirSync(spoolDir)).toEqual(['kept.zip']);
    expect(readFileSync(keepFile).equals(bytes)).toBe(true);
  });

  it('abort() stops the body, rejects waiting reads and removes the spool file', async () => {
    const spoolDir = testTempDir('overlay-format-');
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const body = pieces(bytes, { beforeLast: () => gate });
    const upload = await openOverlayUpload(body.body, { spoolDir, maxBytes: MAX, workers: 0 });
    const waiting = upload.reader.readSegment(upload.reader.segments.length - 1);
    const rejected = expect(waiting).rejects.toMatchObject({
      code: 'aborted',
      message: expect.stringMatching(/client went away/),
    });
    await upload.abort('the client went away');
    await rejected;
    await expect(upload.done).rejects.toMatchObject({ code: 'aborted' });
    expect(readdirSync(spoolDir)).toEqual([]);
    release();
    await expect.poll(() => body.finished()).toBe(true);
    expect(body.sent()).toBeLessThan(bytes.length);
    await upload.reader.close();
  });

  it('close() before the end stops the upload and removes the spool file', async () => {
    const spoolDir = testTempDir('overlay-format-');
    const upload = await openOverlayUpload(pieces(bytes, { stallAt: bytes.length - 10 }).body, {
      spoolDir,
      maxBytes: MAX,
    });
    await upload.reader.close();
    await expect(upload.done).rejects.toMatchObject({ code: 'aborted' });
    expect(readdirSync(spoolDir)).toEqual([]);
  });
});
