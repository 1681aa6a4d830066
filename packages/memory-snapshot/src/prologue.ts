import type { ChunkedInput } from './chunked-input.js';
import { parseConfiguration } from './configuration.js';
import { Cursor, NeedMoreBytes } from './cursor.js';
import { MigrationStreamError } from './errors.js';
import {
  FLAG_MASK,
  IGNORE_SHARED_CAPABILITY,
  PAGE_SIZE,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  RAM_FLAG,
  RAM_SECTION_NAME,
  SECTION,
  TWO_POW_32,
} from './format.js';
import type { ResolvedLimits } from './limits.js';
import type { RamBlock, StreamPrologue } from './types.js';

/** The prologue is small (a block table entry is at most 272 bytes); this bounds the look-ahead. */
const MAX_PROLOGUE_WINDOW = 8 * 1024 * 1024;

/**
 * Reads header, configuration and the RAM START section (block table, EOS, footer if any).
 * Parses a growing look-ahead window synchronously and consumes it once the parse completes.
 */
export async function readPrologue(input: ChunkedInput, limits: ResolvedLimits): Promise<StreamPrologue> {
  let want = 4096;
  for (;;) {
    const complete = await input.fill(want);
    const cur = new Cursor(input.peek(Math.min(want, input.buffered)), input.offset);
    try {
      const prologue = parsePrologue(cur, limits);
      input.skip(cur.pos);
      return prologue;
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
      if (!complete)
        throw new MigrationStreamError('truncated', input.received, 'stream ends inside the prologue');
      if (want >= MAX_PROLOGUE_WINDOW) {
        throw new MigrationStreamError('absurd-size', input.offset, 'prologue larger than 8 MiB');
      }
      want *= 4;
    }
  }
}

function parsePrologue(cur: Cursor, limits: ResolvedLimits): StreamPrologue {
  const magic = cur.be32();
  if (magic !== QEMU_VM_FILE_MAGIC) {
    throw new MigrationStreamError('bad-magic', 0, `magic 0x${magic.toString(16)} is not "QEVM"`);
  }
  const version = cur.be32();
  if (version !== QEMU_VM_FILE_VERSION) {
    throw new MigrationStreamError('bad-version', 4, `stream version ${version}, only 3 is supported`);
  }
  expectSectionType(cur, SECTION.CONFIGURATION, 'QEMU_VM_CONFIGURATION');
  const configStart = cur.pos;
  const { machineType, capabilities } = parseConfiguration(cur);
  const configBytes = cur.bytes.slice(configStart, cur.pos);

  expectSectionType(cur, SECTION.START, 'the RAM START section');
  const ramSectionId = cur.be32();
  const nameAt = cur.offset;
  const sectionName = cur.shortString('section name');
  if (sectionName !== RAM_SECTION_NAME) {
    throw new MigrationStreamError(
      'unexpected-section',
      nameAt,
      `START section "${sectionName}", expected "ram"`,
    );
  }
  const ramInstanceId = cur.be32();
  const ramVersionId = cur.be32();
  const blocks = parseBlockTable(cur, capabilities.includes(IGNORE_SHARED_CAPABILITY), limits);

  const eosAt = cur.offset;
  const eos = cur.be64();
  if (eos !== RAM_FLAG.EOS) {
    throw new MigrationStreamError(
      'unknown-flags',
      eosAt,
      `expected EOS after the block table, got 0x${eos.toString(16)}`,
    );
  }
  // A footer is the only thing that can follow EOS and start with 0x7e; its presence is a machine property.
  const hasSectionFooters = cur.peekU8() === SECTION.FOOTER;
  if (hasSectionFooters) readFooter(cur, ramSectionId);
  return {
    version,
    machineType,
    capabilities,
    configBytes,
    ramSectionId,
    ramInstanceId,
    ramVersionId,
    blocks,
    hasSectionFooters,
  };
}

function expectSectionType(cur: Cursor, type: number, what: string): void {
  const at = cur.offset;
  const got = cur.u8();
  if (got !== type) {
    throw new MigrationStreamError(
      'unexpected-section',
      at,
      `section type 0x${got.toString(16)}, expected ${what}`,
    );
  }
}

/** MEM_SIZE record: be64 (total RAM | 0x04), then blocks until their lengths add up to the total. */
function parseBlockTable(cur: Cursor, withMrAddr: boolean, limits: ResolvedLimits): RamBlock[] {
  const headerAt = cur.offset;
  const hi = cur.be32();
  const lo = cur.be32();
  const flags = lo & FLAG_MASK;
  if (flags !== RAM_FLAG.MEM_SIZE) {
    throw new MigrationStreamError(
      'unknown-flags',
      headerAt,
      `expected MEM_SIZE record, flags 0x${flags.toString(16)}`,
    );
  }
  const total = hi * TWO_POW_32 + (lo - flags);
  if (hi >= 0x20_0000 || total > limits.maxBlocks * limits.maxBlockBytes || total === 0) {
    throw new MigrationStreamError('absurd-size', headerAt, `total RAM size ${total}`);
  }
  const blocks: RamBlock[] = [];
  const seen = new Set<string>();
  let left = total;
  while (left > 0) {
    if (blocks.length === limits.maxBlocks) {
      throw new MigrationStreamError('absurd-size', cur.offset, `more than ${limits.maxBlocks} RAM blocks`);
    }
    const nameAt = cur.offset;
    const name = cur.shortString('RAM block name');
    if (seen.has(name))
      throw new MigrationStreamError('bad-block-table', nameAt, `duplicate RAM block "${name}"`);
    seen.add(name);
    const lengthAt = cur.offset;
    const length = cur.be64();
    if (length === 0 || length % PAGE_SIZE !== 0 || length > limits.maxBlockBytes) {
      throw new MigrationStreamError('absurd-size', lengthAt, `RAM block "${name}" length ${length}`);
    }
    if (length > left) {
      throw new MigrationStreamError(
        'bad-block-table',
        lengthAt,
        `RAM block lengths exceed MEM_SIZE ${total}`,
      );
    }
    left -= length;
    blocks.push(withMrAddr ? { name, length, mrAddr: cur.be64Big() } : { name, length });
  }
  return blocks;
}

function readFooter(cur: Cursor, sectionId: number): void {
  const at = cur.offset;
  const marker = cur.u8();
  const id = cur.be32();
  if (marker !== SECTION.FOOTER || id !== sectionId) {
    throw new MigrationStreamError('bad-footer', at, `expected footer of section ${sectionId}`);
  }
}
