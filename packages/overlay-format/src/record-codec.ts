import {
  type ChunkSpace,
  MAX_DELTA_BYTES,
  type OverlayRecord,
  PAGE_SIZE,
  RECORD_KINDS,
  type RecordEncoding,
  type RecordKind,
} from './records.js';
import { chooseStride, decodeStrideDelta, encodeStrideDelta } from './stride-delta.js';
import { ByteReader, writeVarint } from './varint.js';
import { decodeX86Branches, encodeX86Branches } from './x86-branches.js';

/*
 * Wire form of one record (docs/overlay-format.md, "Records"):
 *   byte   flags: bits 0-3 kind code (index in RECORD_KINDS), bit 4 record space is disk,
 *          bit 5 (self only) referenced space is disk; bit 6 (raw only) the page is stride-coded; bit 7 zero
 *   varint step of the chunk index (below)
 *   then by kind: zero → nothing; base-memory/base-disk/self → varint step of the referenced index;
 *   xor/vcdiff/raw → varint payload length, (stride-coded raw only) varint stride, payload. A raw payload is
 *   exactly PAGE_SIZE: stride-coded (stride-delta.ts), or else with its x86 branches encoded from the chunk's
 *   address, index × PAGE_SIZE (x86-branches.ts)
 * A step is zigzag(value − (previous value + 1)): the chunk index against the segment's previous record's,
 * a reference against the previous reference of the same kind (and space, for self). Runs of consecutive
 * chunks and of consecutive references — a copied file — are runs of zero bytes, which the segment codec
 * squeezes to almost nothing where plain indexes were incompressible (measured: docs/decisions.md).
 */
const DISK_BIT = 0x10;
const SELF_DISK_BIT = 0x20;
const STRIDE_BIT = 0x40;
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

type ReferenceKey = 'base-memory' | 'base-disk' | 'self-memory' | 'self-disk';

function referenceKey(encoding: RecordEncoding): ReferenceKey | undefined {
  if (encoding.kind === 'base-memory' || encoding.kind === 'base-disk') return encoding.kind;
  return encoding.kind === 'self' ? `self-${encoding.space}` : undefined;
}

/** The previous values a segment's steps are taken from; one per segment, fed every record in order. */
export class RecordSteps {
  private index = -1;
  private readonly references: Record<ReferenceKey, number> = {
    'base-memory': -1,
    'base-disk': -1,
    'self-memory': -1,
    'self-disk': -1,
  };

  copy(): RecordSteps {
    const copy = new RecordSteps();
    copy.index = this.index;
    Object.assign(copy.references, this.references);
    return copy;
  }

  indexStep(index: number): number {
    const step = zigzag(index - this.index - 1);
    this.index = index;
    return step;
  }

  indexFrom(step: number): number {
    this.index += unzigzag(step) + 1;
    return this.index;
  }

  referenceStep(key: ReferenceKey, index: number): number {
    const step = zigzag(index - this.references[key] - 1);
    this.references[key] = index;
    return step;
  }

  referenceFrom(key: ReferenceKey, step: number): number {
    this.references[key] += unzigzag(step) + 1;
    return this.references[key];
  }
}

// Arithmetic, not bit operators: steps reach 2^41 (indexes below OVERLAY_LIMITS.maxChunks = 2^40, doubled).
const zigzag = (n: number) => (n >= 0 ? 2 * n : -2 * n - 1);
const unzigzag = (z: number) => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

/** Writes the record at `at` (it must have passed recordProblem); returns the offset after it. */
export function encodeRecord(record: OverlayRecord, out: Uint8Array, at: number, steps: RecordSteps): number {
  const { encoding } = record;
  let flags = KIND_CODE.get(encoding.kind) as number;
  if (record.space === 'disk') flags |= DISK_BIT;
  if (encoding.kind === 'self' && encoding.space === 'disk') flags |= SELF_DISK_BIT;
  out[at] = flags;
  let i = writeVarint(out, at + 1, steps.indexStep(record.index));
  const key = referenceKey(encoding);
  if (key !== undefined)
    i = writeVarint(out, i, steps.referenceStep(key, (encoding as { index: number }).index));
  const payload = payloadOf(encoding);
  if (payload === undefined) return i;
  i = writeVarint(out, i, payload.length);
  if (encoding.kind !== 'raw') {
    out.set(payload, i);
    return i + payload.length;
  }
  const stride = chooseStride(payload);
  if (stride > 0) {
    out[at] = flags | STRIDE_BIT;
    i = writeVarint(out, i, stride);
  }
  const page = out.subarray(i, i + payload.length);
  page.set(payload);
  if (stride > 0) encodeStrideDelta(page, stride);
  else encodeX86Branches(page, record.index * PAGE_SIZE);
  return i + payload.length;
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
 * segment into a fresh buffer, which the records then keep alive); raw pages are restored there in place. Throws 'bad-record' on anything malformed, out of range, in the wrong space, or if the
 * count differs from `expectedCount`.
 */
export function decodeRecords(
  bytes: Uint8Array,
  expected: { space: ChunkSpace; count: number; bounds: RecordBounds; what: string },
): OverlayRecord[] {
  const { bounds } = expected;
  const reader = new ByteReader(bytes, expected.what);
  const steps = new RecordSteps();
  const records: OverlayRecord[] = [];
  const limit = (space: ChunkSpace) => (space === 'memory' ? bounds.memoryPages : bounds.diskChunks);
  while (!reader.done) {
    if (records.length === expected.count) throw reader.fail(`holds more than ${expected.count} records`);
    const flags = reader.byte();
    const kind = RECORD_KINDS[flags & 0x0f];
    if (
      kind === undefined ||
      (flags & 0x80) !== 0 ||
      (kind !== 'self' && (flags & SELF_DISK_BIT) !== 0) ||
      (kind !== 'raw' && (flags & STRIDE_BIT) !== 0)
    )
      throw reader.fail(`has a record with bad flags 0x${flags.toString(16)}`);
    const space: ChunkSpace = (flags & DISK_BIT) !== 0 ? 'disk' : 'memory';
    if (space !== expected.space) throw reader.fail(`has a ${space} record in a ${expected.space} segment`);
    const index = steps.indexFrom(reader.varint());
    if (index < 0 || index >= limit(space))
      throw reader.fail(`has ${space} index ${index} outside 0..${limit(space) - 1}`);
    const encoding = decodeEncoding(reader, { kind, flags, steps }, bounds, limit);
    if (encoding.kind === 'raw' && (flags & STRIDE_BIT) === 0)
      decodeX86Branches(encoding.data, index * PAGE_SIZE);
    records.push({ space, index, encoding });
  }
  if (records.length !== expected.count)
    throw reader.fail(`holds ${records.length} records, the manifest says ${expected.count}`);
  return records;
}

function decodeEncoding(
  reader: ByteReader,
  { kind, flags, steps }: { kind: RecordKind; flags: number; steps: RecordSteps },
  bounds: RecordBounds,
  limit: (space: ChunkSpace) => number,
): RecordEncoding {
  const reference = (key: ReferenceKey, max: number, what: string) => {
    const index = steps.referenceFrom(key, reader.varint());
    if (index < 0 || index >= max)
      throw reader.fail(`has a ${what} reference ${index} outside 0..${max - 1}`);
    return index;
  };
  switch (kind) {
    case 'zero':
      return { kind };
    case 'base-memory':
      return { kind, index: reference(kind, bounds.baseMemoryPages, kind) };
    case 'base-disk':
      return { kind, index: reference(kind, bounds.baseDiskChunks, kind) };
    case 'self': {
      const space: ChunkSpace = (flags & SELF_DISK_BIT) !== 0 ? 'disk' : 'memory';
      return { kind, space, index: reference(`self-${space}`, limit(space), `self ${space}`) };
    }
    case 'xor':
    case 'vcdiff':
    case 'raw': {
      const length = reader.varint();
      if (kind === 'raw' ? length !== PAGE_SIZE : length > MAX_DELTA_BYTES)
        throw reader.fail(`has a ${kind} payload of ${length} bytes`);
      if (kind !== 'raw') return { kind, delta: reader.take(length) };
      const strided = (flags & STRIDE_BIT) !== 0;
      const stride = strided ? reader.varint() : 0;
      if (strided && (stride === 0 || stride >= PAGE_SIZE))
        throw reader.fail(`has a raw page with stride ${stride}`);
      const data = reader.take(length);
      if (stride > 0) decodeStrideDelta(data, stride);
      return { kind, data };
    }
  }
}
