import type { ChunkSource } from './chunk-source.js';
import { OverlayFormatError } from './errors.js';
import { nameProblem, storageProblem } from './zip-directory.js';

/** One zip entry as its local file header describes it: enough to find its data without the directory. */
export interface LocalEntry {
  name: string;
  headerStart: number;
  dataStart: number;
  size: number;
  crc32: number;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
/** Bit 3: CRC-32 and sizes come in a data descriptor after the data, so the header cannot say where it ends. */
const DATA_DESCRIPTOR = 0x8;
const ZIP64_EXTRA = 0x0001;
const FIXED_BYTES = 30;

/** The signature at `offset` (4 bytes): tells a local header from the central directory after the last entry. */
export async function signatureAt(
  source: ChunkSource,
  offset: number,
): Promise<'local' | 'central' | 'other'> {
  const signature = Buffer.from(await source.read(offset, 4)).readUInt32LE(0);
  return signature === LOCAL_HEADER ? 'local' : signature === CENTRAL_HEADER ? 'central' : 'other';
}

/**
 * Reads and checks the local header at `offset`: the same name and storage rules as the central
 * directory's entries, and sizes in the header itself (no data descriptor).
 */
export async function readLocalHeader(source: ChunkSource, offset: number): Promise<LocalEntry> {
  const fixed = Buffer.from(await source.read(offset, FIXED_BYTES));
  if (fixed.readUInt32LE(0) !== LOCAL_HEADER)
    throw new OverlayFormatError('bad-entries', `no zip entry at byte ${offset}`);
  const flags = fixed.readUInt16LE(6);
  const method = fixed.readUInt16LE(8);
  const crc32 = fixed.readUInt32LE(14);
  let compressedSize = fixed.readUInt32LE(18);
  let size = fixed.readUInt32LE(22);
  const nameLength = fixed.readUInt16LE(26);
  const extraLength = fixed.readUInt16LE(28);
  const variable = Buffer.from(await source.read(offset + FIXED_BYTES, nameLength + extraLength));
  const raw = variable.subarray(0, nameLength);
  const name = raw.toString('latin1');
  const problem = nameProblem(raw);
  if (problem !== undefined) throw new OverlayFormatError('bad-entry', problem);
  if ((flags & DATA_DESCRIPTOR) !== 0)
    throw new OverlayFormatError(
      'not-streamable',
      `entry "${name}" has its sizes after its data (zip data descriptor), so it cannot be read as it arrives`,
    );
  if (size === 0xffffffff || compressedSize === 0xffffffff) {
    const zip64 = zip64Sizes(
      variable.subarray(nameLength),
      size === 0xffffffff,
      compressedSize === 0xffffffff,
    );
    if (zip64 === undefined)
      throw new OverlayFormatError('bad-entry', `entry "${name}" lacks the zip64 sizes its header refers to`);
    size = zip64.size ?? size;
    compressedSize = zip64.compressedSize ?? compressedSize;
  }
  const storage = storageProblem(raw, flags, method, compressedSize, size);
  if (storage !== undefined) throw new OverlayFormatError('bad-entry', storage);
  return {
    name,
    headerStart: offset,
    dataStart: offset + FIXED_BYTES + nameLength + extraLength,
    size,
    crc32,
  };
}

/** The zip64 extended information field holds the 8-byte sizes whose 4-byte fields are 0xffffffff, in that order. */
function zip64Sizes(
  extra: Buffer,
  hasSize: boolean,
  hasCompressed: boolean,
): { size?: number; compressedSize?: number } | undefined {
  for (let at = 0; at + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    const body = extra.subarray(at + 4, at + 4 + length);
    if (id === ZIP64_EXTRA && body.length >= 8 * (Number(hasSize) + Number(hasCompressed))) {
      const size = hasSize ? Number(body.readBigUInt64LE(0)) : undefined;
      const compressedSize = hasCompressed ? Number(body.readBigUInt64LE(hasSize ? 8 : 0)) : undefined;
      return {
        ...(size === undefined ? {} : { size }),
        ...(compressedSize === undefined ? {} : { compressedSize }),
      };
    }
    at += 4 + length;
  }
  return undefined;
}
