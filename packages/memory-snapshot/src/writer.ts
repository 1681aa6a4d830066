import { looksComplete } from './device-tail.js';
import { MigrationStreamError } from './errors.js';
import { PAGE_SIZE, QEMU_VM_FILE_MAGIC, RAM_FLAG, RAM_SECTION_NAME, SECTION, TWO_POW_32 } from './format.js';
import { OutputBuffer } from './output-buffer.js';
import type { RamPage, StreamPrologue } from './types.js';
import { type EncodedBlock, validatePrologue } from './validate-prologue.js';

export interface MigrationStreamWriteInput {
  /** Header, configuration and RAM block table to emit (usually from readMigrationStream). */
  prologue: StreamPrologue;
  /** Pages in any order and any subset; omitted pages stay zero on QEMU's fresh destination. */
  pages: Iterable<RamPage> | AsyncIterable<RamPage>;
  /** Device sections through QEMU_VM_EOF, as the reader's 'deviceTail' item gives them. */
  deviceTail: Uint8Array;
  /** vmdesc JSON to append; QEMU loads streams without one (it only logs a warning). */
  vmdesc?: Uint8Array;
  /** Page records per RAM PART section (default 4096). */
  pagesPerSection?: number;
  /** Size of the output chunks (default 256 KiB, at least 8 KiB). */
  chunkBytes?: number;
}

/** Largest page record: header, u8 length + 255-byte name, page data. */
const MAX_RECORD_BYTES = 8 + 1 + 255 + PAGE_SIZE;
/** Largest fixed-size piece written at once (section header or trailer). */
const MAX_PIECE_BYTES = 32;

/**
 * Serialises a migration stream QEMU 7.2 accepts with `-incoming`: header + configuration verbatim,
 * RAM START with the block table, the pages in PART sections of at most `pagesPerSection`
 * records (each section names its first block, later records use CONTINUE while the block
 * repeats), an empty END section, the device tail and the optional vmdesc. Yields chunks of about
 * `chunkBytes`; blobs larger than a chunk are yielded as they are.
 */
export async function* writeMigrationStream(
  input: MigrationStreamWriteInput,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { prologue, deviceTail, vmdesc } = input;
  const pagesPerSection = input.pagesPerSection ?? 4096;
  const chunkBytes = input.chunkBytes ?? 256 * 1024;
  if (!Number.isInteger(pagesPerSection) || pagesPerSection < 1) {
    throw new RangeError(`pagesPerSection must be a positive integer, got ${pagesPerSection}`);
  }
  if (!Number.isInteger(chunkBytes) || chunkBytes < 8192) {
    throw new RangeError(`chunkBytes must be an integer >= 8192, got ${chunkBytes}`);
  }
  const blocks = validatePrologue(prologue);
  if (!looksComplete(deviceTail, prologue.hasSectionFooters)) {
    throw new MigrationStreamError(
      'bad-device-tail',
      0,
      'device tail must be device sections (with footers if the stream has them) ending in QEMU_VM_EOF',
    );
  }
  if (vmdesc !== undefined && vmdesc.length > 0xffff_ffff) {
    throw new MigrationStreamError('absurd-size', 0, `vmdesc of ${vmdesc.length} bytes`);
  }

  const out = new OutputBuffer(chunkBytes);
  const { ramSectionId: id, hasSectionFooters } = prologue;
  const endSection = () => {
    out.be64(RAM_FLAG.EOS);
    if (hasSectionFooters) {
      out.u8(SECTION.FOOTER);
      out.be32(id);
    }
  };

  yield* writeBlob(out, headerBytes(prologue, blocks));
  if (hasSectionFooters) {
    out.u8(SECTION.FOOTER);
    out.be32(id);
  }

  const blocksByName = new Map(blocks.map((b) => [b.name, b]));
  let inSection = 0; // records in the open PART section; 0 = none open
  let previous: EncodedBlock | null = null;
  for await (const page of input.pages) {
    if (out.free < MAX_RECORD_BYTES + 2 * MAX_PIECE_BYTES) yield out.flush();
    const block = blocksByName.get(page.block);
    if (block === undefined) {
      throw new MigrationStreamError(
        'unknown-block',
        out.offset,
        `page names RAM block "${page.block}", not in the table`,
      );
    }
    const { offset, data } = page;
    if (!Number.isInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0 || offset >= block.length) {
      throw new MigrationStreamError(
        'absurd-size',
        out.offset,
        `page offset ${offset} outside RAM block "${block.name}"`,
      );
    }
    if (data !== null && data.length !== PAGE_SIZE) {
      throw new MigrationStreamError('absurd-size', out.offset, `page data of ${data.length} bytes`);
    }
    if (inSection === pagesPerSection) {
      endSection();
      inSection = 0;
    }
    if (inSection === 0) {
      out.u8(SECTION.PART);
      out.be32(id);
      previous = null;
    }
    inSection++;
    let flags = data === null ? RAM_FLAG.ZERO : RAM_FLAG.PAGE;
    if (block === previous) flags |= RAM_FLAG.CONTINUE;
    out.be32(Math.floor(offset / TWO_POW_32));
    out.be32((offset % TWO_POW_32) + flags);
    if (block !== previous) out.shortBytes(block.nameBytes);
    previous = block;
    if (data === null) out.u8(0);
    else out.bytes(data);
  }
  if (out.free < 4 * MAX_PIECE_BYTES) yield out.flush();
  if (inSection > 0) endSection();
  out.u8(SECTION.END);
  out.be32(id);
  endSection();

  yield* writeBlob(out, deviceTail);
  if (vmdesc !== undefined) {
    out.u8(SECTION.VMDESCRIPTION);
    out.be32(vmdesc.length);
    yield* writeBlob(out, vmdesc);
  }
  if (!out.isEmpty) yield out.flush();
}

/** Copies small blobs into the output; flushes and yields large ones unchanged. */
function* writeBlob(out: OutputBuffer, blob: Uint8Array): Generator<Uint8Array> {
  if (blob.length + MAX_PIECE_BYTES <= out.free) {
    out.bytes(blob);
    return;
  }
  if (!out.isEmpty) yield out.flush();
  if (blob.length + MAX_PIECE_BYTES <= out.free) {
    out.bytes(blob);
    return;
  }
  out.skipExternal(blob.length);
  yield blob;
}

/** Magic, version, configuration and the RAM START section up to its EOS. */
function headerBytes(prologue: StreamPrologue, blocks: EncodedBlock[]): Uint8Array {
  const ramName = new TextEncoder().encode(RAM_SECTION_NAME);
  let size = 4 + 4 + 1 + prologue.configBytes.length + 1 + 4 + 1 + ramName.length + 4 + 4 + 8 + 8;
  for (const b of blocks) size += 1 + b.nameBytes.length + 8 + (b.mrAddr === undefined ? 0 : 8);
  const out = new OutputBuffer(size);
  out.be32(QEMU_VM_FILE_MAGIC);
  out.be32(prologue.version);
  out.u8(SECTION.CONFIGURATION);
  out.bytes(prologue.configBytes);
  out.u8(SECTION.START);
  out.be32(prologue.ramSectionId);
  out.shortBytes(ramName);
  out.be32(prologue.ramInstanceId);
  out.be32(prologue.ramVersionId);
  out.be64(blocks.reduce((sum, b) => sum + b.length, 0) + RAM_FLAG.MEM_SIZE);
  for (const b of blocks) {
    out.shortBytes(b.nameBytes);
    out.be64(b.length);
    if (b.mrAddr !== undefined) out.be64Big(b.mrAddr);
  }
  out.be64(RAM_FLAG.EOS);
  return out.flush();
}
