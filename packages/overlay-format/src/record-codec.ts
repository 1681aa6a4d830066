import {
  type ChunkSpace,
  MAX_DELTA_BYTES,
  type OverlayRecord,
  PAGE_SIZE,
  RECORD_KINDS,
  type RecordEncoding,
  type RecordKind,
} from './records.js';
import { ByteReader, varintLength, writeVarint } from './varint.js';

/*
 * Wire form of one record (docs/overlay-format.md, "Records"):
 *   byte   flags: bits 0-3 kind code (index in RECORD_KINDS), bit 4 record space is disk,
 *          bit 5 (self only) referenced space is disk; bits 6-7 zero
 *   varint chunk index
 *   then by kind: zero → nothing; base-memory/base-disk/self → varint referenced index;
 *   xor/vcdiff/raw → varint payload length, payload (raw: exactly PAGE_SIZE)
 */
const DISK_BIT = 0x10;
const SELF_DISK_BIT = 0x20;
const KIND_CODE = new Map<RecordKind, number>(RECORD_KINDS.map((k, i) => [k, i]));

/** Why a record cannot be written, or undefined. */
export function recordProblem(record: OverlayRecord): string | undefined {
  const { space, index, encoding } = record;
  if (space !== 'memory' && space !== 'disk') return `space ${JSON.stringify(space)}`;
  if (!Number.isSafeInteger(index) || index < 0) return `index ${index}`;
  switch (encoding.kind) {
    case 'zero':
      return undefined;
    case 'base-memory':
    case 'base-disk':
    case 'self':
      if (!Number.isSafeInteger(encoding.index) || encoding.index < 0)
        return `${encoding.kind} reference ${encoding.index}`;
      if (encoding.kind === 'self' && encoding.space !== 'memory' && encoding.space !== 'disk')
        return `self reference space ${JSON.stringify(encoding.space)}`;
      return undefined;
    case 'xor':
    case 'vcdiff':
      return encoding.delta.length > MAX_DELTA_BYTES
        ? `${encoding.kind} delta of ${encoding.delta.length} bytes (max ${MAX_DELTA_BYTES})`
        : undefined;
    case 'raw':
      return encoding.data.length !== PAGE_SIZE ? `raw data of ${encoding.data.length} bytes` : undefined;
    default:
      return `kind ${JSON.stringify((encoding as { kind: unknown }).kind)}`;
  }
}

function payloadOf(encoding: RecordEncoding): Uint8Array | undefined {
  if (encoding.kind === 'xor' || encoding.kind === 'vcdiff') return encoding.delta;
  if (encoding.kind === 'raw') return encoding.data;
  return undefined;
}

function referenceOf(encoding: RecordEncoding): number | undefined {
  return encoding.kind === 'base-memory' || encoding.kind === 'base-disk' || encoding.kind === 'self'
    ? encoding.index
    : undefined;
}

/** Bytes the record takes on the wire (the record must have passed recordProblem). */
export function encodedRecordLength(record: OverlayRecord): number {
  const payload = payloadOf(record.encoding);
  const reference = referenceOf(record.encoding);
  return (
    1 +
    varintLength(record.index) +
    (reference === undefined ? 0 : varintLength(reference)) +
    (payload === undefined ? 0 : varintLength(payload.length) + payload.length)
  );
}

/** Writes the record at `at`; returns the offset after it. */
export function encodeRecord(record: OverlayRecord, out: Uint8Array, at: number): number {
  const { encoding } = record;
  let flags = KIND_CODE.get(encoding.kind) as number;
  if (record.space === 'disk') flags |= DISK_BIT;
  if (encoding.kind === 'self' && encoding.space === 'disk') flags |= SELF_DISK_BIT;
  out[at] = flags;
  let i = writeVarint(out, at + 1, record.index);
  const reference = referenceOf(encoding);
  if (reference !== undefined) i = writeVarint(out, i, reference);
  const payload = payloadOf(encoding);
  if (payload !== undefined) {
    i = writeVarint(out, i, payload.length);
    out.set(payload, i);
    i += payload.length;
  }
  return i;
}

/** Chunk counts the indexes in a segment are checked against. */
export interface RecordBounds {
  memoryPages: number;
  diskChunks: number;
  baseMemoryPages: number;
  baseDiskChunks: number;
}

/**
 * Decodes a whole segment. Payloads are views into `bytes` (no copy: the reader decompresses each
 * segment into a fresh buffer, which the records then keep alive). Throws 'bad-record' on anything malformed, out of range, in the wrong space, or if the
 * count differs from `expectedCount`.
 */
export function decodeRecords(
  bytes: Uint8Array,
  expected: { space: ChunkSpace; count: number; bounds: RecordBounds; what: string },
): OverlayRecord[] {
  const { bounds } = expected;
  const reader = new ByteReader(bytes, expected.what);
  const records: OverlayRecord[] = [];
  const limit = (space: ChunkSpace) => (space === 'memory' ? bounds.memoryPages : bounds.diskChunks);
  while (!reader.done) {
    if (records.length === expected.count) throw reader.fail(`holds more than ${expected.count} records`);
    const flags = reader.byte();
    const kind = RECORD_KINDS[flags & 0x0f];
    if (kind === undefined || (flags & 0xc0) !== 0 || (kind !== 'self' && (flags & SELF_DISK_BIT) !== 0))
      throw reader.fail(`has a record with bad flags 0x${flags.toString(16)}`);
    const space: ChunkSpace = (flags & DISK_BIT) !== 0 ? 'disk' : 'memory';
    if (space !== expected.space) throw reader.fail(`has a ${space} record in a ${expected.space} segment`);
    const index = reader.varint();
    if (index >= limit(space)) throw reader.fail(`has ${space} index ${index} beyond ${limit(space)} chunks`);
    records.push({ space, index, encoding: decodeEncoding(reader, kind, flags, bounds, limit) });
  }
  if (records.length !== expected.count)
    throw reader.fail(`holds ${records.length} records, the manifest says ${expected.count}`);
  return records;
}

function decodeEncoding(
  reader: ByteReader,
  kind: RecordKind,
  flags: number,
  bounds: RecordBounds,
  limit: (space: ChunkSpace) => number,
): RecordEncoding {
  const checked = (index: number, max: number, what: string) => {
    if (index >= max) throw reader.fail(`has a ${what} reference ${index} beyond ${max} chunks`);
    return index;
  };
  switch (kind) {
    case 'zero':
      return { kind };
    case 'base-memory':
      return { kind, index: checked(reader.varint(), bounds.baseMemoryPages, kind) };
    case 'base-disk':
      return { kind, index: checked(reader.varint(), bounds.baseDiskChunks, kind) };
    case 'self': {
      const space: ChunkSpace = (flags & SELF_DISK_BIT) !== 0 ? 'disk' : 'memory';
      return { kind, space, index: checked(reader.varint(), limit(space), `self ${space}`) };
    }
    case 'xor':
    case 'vcdiff':
    case 'raw': {
      const length = reader.varint();
      if (kind === 'raw' ? length !== PAGE_SIZE : length > MAX_DELTA_BYTES)
        throw reader.fail(`has a ${kind} payload of ${length} bytes`);
      const payload = reader.take(length);
      return kind === 'raw' ? { kind, data: payload } : { kind, delta: payload };
    }
  }
}
