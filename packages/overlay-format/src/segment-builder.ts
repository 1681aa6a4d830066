import { encodeRecord, RecordSteps } from './record-codec.js';
import { type ChunkSpace, MAX_DELTA_BYTES, type OverlayRecord } from './records.js';

/** Longest wire record: flags, two varints, payload length varint, payload. */
const MAX_RECORD_BYTES = 1 + 8 + 8 + 4 + MAX_DELTA_BYTES;

/** The uncompressed records of one segment, appended in place. */
export class SegmentBuilder {
  private buffer: Uint8Array;
  private readonly steps = new RecordSteps();
  length = 0;
  records = 0;
  firstIndex = Number.POSITIVE_INFINITY;
  lastIndex = -1;

  constructor(
    readonly space: ChunkSpace,
    readonly cutBytes: number,
  ) {
    this.buffer = new Uint8Array(cutBytes + MAX_RECORD_BYTES);
  }

  /** Appends; returns the encoded length. Callers seal once `full`. */
  add(record: OverlayRecord): number {
    const start = this.length;
    this.length = encodeRecord(record, this.buffer, start, this.steps);
    this.records++;
    this.firstIndex = Math.min(this.firstIndex, record.index);
    this.lastIndex = Math.max(this.lastIndex, record.index);
    return this.length - start;
  }

  get full(): boolean {
    return this.length >= this.cutBytes;
  }

  /** A view of the records over a buffer nothing else uses, so it can be transferred to a worker. */
  take(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
