import { closeSync, createWriteStream, ftruncateSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BaseInfo } from '@cloudlet/base-registry';
import { CHUNK_SIZE, type ChunkResolver, createDeltaCodecs, decodeChunk } from '@cloudlet/delta';
import { PAGE_SIZE, pageIndexer, type RamPage, writeMigrationStream } from '@cloudlet/memory-snapshot';
import { openOverlay } from '@cloudlet/overlay-format';
import { readChunkSync } from '../chunk-file.js';
import { copySparse } from '../sparse-copy.js';
import { flattenRam } from './flat-ram.js';
import { DEVICE_STATE_BLOB, decodePrologue, PROLOGUE_BLOB } from './stream-frame-blobs.js';

export interface ApplyOverlayOptions {
  /** The full raw disk image to write (a sparse copy of the base disk with the overlay's chunks applied). */
  readonly diskOut: string;
  /** The memory snapshot (migration stream) to write. */
  readonly memoryOut: string;
}

/** Non-zero pages of a flat RAM file, in index order. */
function* flatPages(fd: number, blocks: { name: string; length: number }[]): Generator<RamPage> {
  const indexer = pageIndexer(blocks);
  const zero = Buffer.alloc(PAGE_SIZE);
  for (let i = 0; i < indexer.pageCount; i++) {
    const data = readChunkSync(fd, i);
    if (!data.equals(zero)) yield { ...indexer.locate(i), data };
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
  try {
    if (overlay.manifest.base.id !== base.id) {
      throw new Error(`overlay is for base ${overlay.manifest.base.id}, not ${base.id}`);
    }
    const prologue = decodePrologue(await overlay.readBlob(PROLOGUE_BLOB));
    const deviceTail = await overlay.readBlob(DEVICE_STATE_BLOB);
    await (await flattenRam(base.paths.memory, join(work, 'base.ram'))).close();
    await copySparse(join(work, 'base.ram'), join(work, 'new.ram'));
    await copySparse(base.paths.disk, options.diskOut);
    const open = (file: string, flags: string) => {
      const fd = openSync(file, flags);
      fds.push(fd);
      return fd;
    };
    const baseRam = open(join(work, 'base.ram'), 'r');
    const baseDisk = open(base.paths.disk, 'r');
    const out = { memory: open(join(work, 'new.ram'), 'r+'), disk: open(options.diskOut, 'r+') };
    const codecs = await createDeltaCodecs();
    for await (const record of overlay.records()) {
      const sameplace = record.space === 'memory' ? baseRam : baseDisk;
      const resolver: ChunkResolver = {
        baseMemoryPage: (i) => readChunkSync(baseRam, i),
        baseDiskChunk: (i) => readChunkSync(baseDisk, i),
        overlayChunk: (space, i) => readChunkSync(out[space], i),
        sameplaceBase: () => readChunkSync(sameplace, record.index),
      };
      const data = decodeChunk(record.encoding, resolver, codecs);
      writeSync(out[record.space], data, 0, CHUNK_SIZE, record.index * CHUNK_SIZE);
    }
    // A disk that is not a whole number of chunks: the last chunk was written whole, cut it back.
    ftruncateSync(out.disk, overlay.manifest.vm.diskBytes);
    const pages = flatPages(out.memory, prologue.blocks);
    await pipeline(
      Readable.from(writeMigrationStream({ prologue, pages, deviceTail })),
      createWriteStream(options.memoryOut),
    );
  } finally {
    for (const fd of fds) closeSync(fd);
    await overlay.close();
    await rm(work, { recursive: true, force: true });
  }
}
