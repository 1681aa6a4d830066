import { closeSync, createWriteStream, ftruncateSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BaseInfo } from '@cloudlet/base-registry';
import { CHUNK_SIZE, isZeroChunk } from '@cloudlet/delta';
import { PAGE_SIZE, pageIndexer, type RamPage, writeMigrationStream } from '@cloudlet/memory-snapshot';
import { openOverlay } from '@cloudlet/overlay-format';
import { readChunkSync } from '../chunk-file.js';
import { openRamPages, type RamPages } from '../ram-pages.js';
import { copySparse } from '../sparse-copy.js';
import { OverlayMismatchError } from '../synthesis/errors.js';
import { createRecordDecoder } from '../synthesis/record-decoder.js';
import { DEVICE_STATE_BLOB, decodePrologue, PROLOGUE_BLOB } from './stream-frame-blobs.js';

export interface ApplyOverlayOptions {
  /** The full raw disk image to write (a sparse copy of the base disk with the overlay's chunks applied). */
  readonly diskOut: string;
  /** The memory snapshot (migration stream) to write. */
  readonly memoryOut: string;
}

/** Non-zero pages of the new RAM in index order: the overlay's where it wrote one, else the base's. */
function* newPages(
  written: Uint8Array,
  newRam: number,
  base: RamPages,
  blocks: { name: string; length: number }[],
): Generator<RamPage> {
  const indexer = pageIndexer(blocks);
  for (let i = 0; i < indexer.pageCount; i++) {
    const data = written[i] === 1 ? readChunkSync(newRam, i) : base.pageSync(i);
    if (!isZeroChunk(data)) yield { ...indexer.locate(i), data };
  }
}

/**
 * Rebuilds the customized VM's full disk image and memory snapshot from its base and an overlay — the
 * reference reconstruction (tests, tools). Synthesis does the same work pipelined, without full copies.
 */
export async function applyOverlay(
  base: BaseInfo,
  overlayFile: string,
  options: ApplyOverlayOptions,
): Promise<void> {
  const overlay = await openOverlay(overlayFile);
  const work = await mkdtemp(join(tmpdir(), 'cloudlet-apply-'));
  const fds: number[] = [];
  let baseRam: RamPages | undefined;
  try {
    if (overlay.manifest.base.id !== base.id) {
      throw new OverlayMismatchError(`overlay is for base ${overlay.manifest.base.id}, not ${base.id}`);
    }
    const prologue = decodePrologue(await overlay.readBlob(PROLOGUE_BLOB));
    const deviceTail = await overlay.readBlob(DEVICE_STATE_BLOB);
    baseRam = await openRamPages(base.paths.memory);
    await writeFile(join(work, 'new.ram'), '');
    await truncate(join(work, 'new.ram'), baseRam.pageCount * PAGE_SIZE);
    await copySparse(base.paths.disk, options.diskOut);
    const open = (file: string, flags: string) => {
      const fd = openSync(file, flags);
      fds.push(fd);
      return fd;
    };
    const ram = baseRam;
    const written = new Uint8Array(ram.pageCount);
    const baseDisk = open(base.paths.disk, 'r');
    const out = { memory: open(join(work, 'new.ram'), 'r+'), disk: open(options.diskOut, 'r+') };
    const decode = await createRecordDecoder({
      baseRam: ram,
      baseDisk,
      overlayChunk: async (space, i) => readChunkSync(out[space], i),
    });
    for await (const record of overlay.records()) {
      const data = await decode(record);
      writeSync(out[record.space], data, 0, CHUNK_SIZE, record.index * CHUNK_SIZE);
      if (record.space === 'memory') written[record.index] = 1;
    }
    // A disk that is not a whole number of chunks: the last chunk was written whole, cut it back.
    ftruncateSync(out.disk, overlay.manifest.vm.diskBytes);
    const pages = newPages(written, out.memory, ram, prologue.blocks);
    await pipeline(
      Readable.from(writeMigrationStream({ prologue, pages, deviceTail })),
      createWriteStream(options.memoryOut),
    );
  } finally {
    for (const fd of fds) closeSync(fd);
    await baseRam?.close();
    await overlay.close();
    await rm(work, { recursive: true, force: true });
  }
}
