import { ChunkedInput } from './chunked-input.js';
import { bytesToName } from './cursor.js';
import { splitDeviceTail } from './device-tail.js';
import { MigrationStreamError } from './errors.js';
import { FLAG_MASK, PAGE_SIZE, RAM_FLAG, SECTION, TWO_POW_32 } from './format.js';
import { type ResolvedLimits, resolveLimits } from './limits.js';
import { readPrologue } from './prologue.js';
import type { MigrationStreamItem, MigrationStreamLimits, RamBlock } from './types.js';

/** Flags a page record may carry (EOS only appears alone, as the end-of-section record). */
const PAGE_RECORD_FLAGS = RAM_FLAG.ZERO | RAM_FLAG.PAGE | RAM_FLAG.CONTINUE;

/**
 * Parses a QEMU 7.2 migration stream (version 3) as it arrives. Yields, in order: one 'prologue',
 * one 'page' per RAM record (in stream order; a page's data is a view into the input chunk when it
 * lies inside one), one 'deviceTail', and a 'vmdesc' when the stream has one.
 * Memory held: the current input chunk(s) covering one record, plus the device tail and vmdesc
 * (bounded by `limits`). Malformed input throws MigrationStreamError.
 */
export async function* readMigrationStream(
  source: AsyncIterable<Uint8Array>,
  limits?: MigrationStreamLimits,
): AsyncGenerator<MigrationStreamItem, void, undefined> {
  const caps = resolveLimits(limits);
  const input = new ChunkedInput(source);
  try {
    const prologue = await readPrologue(input, caps);
    yield { kind: 'prologue', prologue };
    const { ramSectionId, hasSectionFooters } = prologue;
    const blocksByName = new Map<string, RamBlock>(prologue.blocks.map((b) => [b.name, b]));
    // Like QEMU's loader, CONTINUE refers to the last named block, even across sections.
    let block: RamBlock | null = null;

    for (let sectionType = 0; sectionType !== SECTION.END; ) {
      await need(input, 5);
      const sectionAt = input.offset;
      sectionType = input.u8();
      const sectionId = input.be32();
      if ((sectionType !== SECTION.PART && sectionType !== SECTION.END) || sectionId !== ramSectionId) {
        throw new MigrationStreamError(
          'unexpected-section',
          sectionAt,
          `section type 0x${sectionType.toString(16)} id ${sectionId}, expected a RAM PART/END section (id ${ramSectionId})`,
        );
      }
      for (;;) {
        if (input.buffered < 8) await need(input, 8);
        const recordAt = input.offset;
        const hi = input.be32();
        const lo = input.be32();
        const flags = lo & FLAG_MASK;
        if (flags === RAM_FLAG.EOS && hi === 0 && lo === RAM_FLAG.EOS) break;
        const kind = flags & (RAM_FLAG.ZERO | RAM_FLAG.PAGE);
        if ((flags & ~PAGE_RECORD_FLAGS) !== 0 || (kind !== RAM_FLAG.ZERO && kind !== RAM_FLAG.PAGE)) {
          throw new MigrationStreamError(
            'unknown-flags',
            recordAt,
            `RAM record flags 0x${flags.toString(16)}`,
          );
        }
        if ((flags & RAM_FLAG.CONTINUE) === 0) {
          block = await readBlockName(input, blocksByName);
        } else if (block === null) {
          throw new MigrationStreamError('unknown-block', recordAt, 'CONTINUE record with no previous block');
        }
        const offset = hi * TWO_POW_32 + (lo - flags);
        if (offset >= block.length) {
          throw new MigrationStreamError(
            'absurd-size',
            recordAt,
            `page offset 0x${offset.toString(16)} beyond RAM block "${block.name}" (0x${block.length.toString(16)} bytes)`,
          );
        }
        let data: Uint8Array | null;
        let dataOffset: number | null = null;
        if (kind === RAM_FLAG.PAGE) {
          if (input.buffered < PAGE_SIZE) await need(input, PAGE_SIZE);
          dataOffset = input.offset;
          data = input.take(PAGE_SIZE);
        } else {
          if (input.buffered < 1) await need(input, 1);
          const fill = input.u8();
          // QEMU 7.2 always sends fill 0; any other fill byte means a page of that byte.
          data = fill === 0 ? null : new Uint8Array(PAGE_SIZE).fill(fill);
        }
        yield { kind: 'page', page: { block: block.name, offset, data }, dataOffset };
      }
      if (hasSectionFooters) await readFooter(input, ramSectionId);
    }

    const { deviceTail, vmdesc } = await readTail(input, hasSectionFooters, caps);
    yield { kind: 'deviceTail', bytes: deviceTail };
    if (vmdesc !== null) yield { kind: 'vmdesc', json: vmdesc };
  } finally {
    await input.close();
  }
}

async function need(input: ChunkedInput, n: number): Promise<void> {
  if (!(await input.fill(n))) {
    throw new MigrationStreamError(
      'truncated',
      input.received,
      `stream ends ${input.buffered} bytes into a ${n}-byte read`,
    );
  }
}

async function readBlockName(input: ChunkedInput, blocksByName: Map<string, RamBlock>): Promise<RamBlock> {
  await need(input, 1);
  const at = input.offset;
  const len = input.u8();
  if (len === 0) throw new MigrationStreamError('absurd-size', at, 'empty RAM block name');
  await need(input, len);
  const name = bytesToName(input.take(len));
  const block = blocksByName.get(name);
  if (block === undefined)
    throw new MigrationStreamError('unknown-block', at, `RAM block "${name}" is not in the block table`);
  return block;
}

async function readFooter(input: ChunkedInput, sectionId: number): Promise<void> {
  await need(input, 5);
  const at = input.offset;
  const marker = input.u8();
  const id = input.be32();
  if (marker !== SECTION.FOOTER || id !== sectionId) {
    throw new MigrationStreamError('bad-footer', at, `expected footer of section ${sectionId}`);
  }
}

/** Collects everything after the RAM END section (capped) and splits off the vmdesc. */
async function readTail(input: ChunkedInput, hasSectionFooters: boolean, caps: ResolvedLimits) {
  await need(input, 1);
  const restOffset = input.offset;
  const first = input.peekU8();
  if (first !== SECTION.FULL && first !== SECTION.EOF) {
    throw new MigrationStreamError(
      'unexpected-section',
      restOffset,
      `section type 0x${first.toString(16)} after the RAM END section`,
    );
  }
  const cap = caps.maxDeviceTailBytes + caps.maxVmdescBytes + 5;
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of input.rest()) {
    if (size + chunk.length > cap) {
      throw new MigrationStreamError(
        'absurd-size',
        restOffset + cap,
        `device tail and vmdesc exceed ${cap} bytes`,
      );
    }
    parts.push(chunk);
    size += chunk.length;
  }
  // One contiguous copy, so the tail does not pin the input chunks it came from.
  const rest = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    rest.set(part, at);
    at += part.length;
  }
  return splitDeviceTail(rest, restOffset, hasSectionFooters, caps);
}
