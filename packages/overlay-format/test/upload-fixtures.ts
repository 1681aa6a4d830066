import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { createOverlayWriter, PAGE_SIZE } from '../src/index.js';
import { manifestFields } from './fixtures.js';

/** A real overlay from the writer: several memory and disk segments and a blob. */
export async function writeUploadFixture(): Promise<{ file: string; bytes: Buffer }> {
  const file = join(testTempDir('overlay-format-'), 'upload.zip');
  const writer = createOverlayWriter({ file, targetSegmentBytes: 16_384, workers: 0 });
  for (let i = 0; i < 40; i++)
    await writer.add({
      space: 'memory',
      index: i * 2,
      encoding: { kind: 'raw', data: randomBytes(PAGE_SIZE) },
    });
  for (let i = 0; i < 30; i++)
    await writer.add({
      space: 'disk',
      index: i,
      encoding:
        i % 3 === 0
          ? { kind: 'self', space: 'memory', index: i * 2 }
          : { kind: 'raw', data: randomBytes(PAGE_SIZE) },
    });
  await writer.addBlob('device-state', randomBytes(3000));
  await writer.finish(manifestFields());
  return { file, bytes: readFileSync(file) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Pieces {
  body: AsyncGenerator<Uint8Array>;
  /** Bytes handed out so far. */
  sent(): number;
  /** Whether the generator's finally ran (the body was stopped or ended). */
  finished(): boolean;
}

/**
 * `bytes` in random-sized pieces (1 B … 8 KiB) with short pauses; `beforeLast` is awaited before the
 * final piece, `stallAt` stops sending for good from that offset on.
 */
export function pieces(
  bytes: Uint8Array,
  options: { beforeLast?: () => Promise<void>; stallAt?: number } = {},
): Pieces {
  let sent = 0;
  let finished = false;
  const body = (async function* () {
    try {
      while (sent < bytes.length) {
        if (options.stallAt !== undefined && sent >= options.stallAt) await new Promise(() => {});
        let size = 1 + Math.floor(Math.random() * 8192);
        if (options.stallAt !== undefined && sent < options.stallAt)
          size = Math.min(size, options.stallAt - sent);
        if (sent + size >= bytes.length) await options.beforeLast?.();
        if (Math.random() < 0.3) await sleep(1);
        const piece = bytes.subarray(sent, sent + size);
        sent += piece.length;
        yield piece;
      }
    } finally {
      finished = true;
    }
  })();
  return { body, sent: () => sent, finished: () => finished };
}
