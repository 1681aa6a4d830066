import { encodeRecord, RecordSteps } from './record-codec.js';
import { type ChunkSpace, MAX_DELTA_BYTES, type OverlayRecord, type RecordEncoding } from './records.js';
import { addStatistics, emptySpaceStatistics, type SpaceStatistics } from './statistics.js';

/** Longest wire record: flags, two varints, payload length varint, stride varint, payload. */
const MAX_RECORD_BYTES = 1 + 8 + 8 + 4 + 2 + MAX_DELTA_BYTES;

/** One way of writing a segment's records: their wire bytes and what they count per kind. */
export interface SegmentVariant {
  readonly bytes: Uint8Array;
  readonly statistics: SpaceStatistics;
}

/** Records appended in wire form to a buffer that grows when it must. */
class EncodedRecords {
  length = 0;
  private constructor(
    private buffer: Uint8Array,
    private readonly steps: RecordSteps,
    readonly statistics: SpaceStatistics,
  ) {}

  static empty(capacity: number): EncodedRecords {
    return new EncodedRecords(new Uint8Array(capacity), new RecordSteps(), emptySpaceStatistics());
  }

  /** The same records so far, to go on differently from here. */
  copy(): EncodedRecords {
    const statistics = emptySpaceStatistics();
    addStatistics(statistics, this.statistics);
    const copy = new EncodedRecords(new Uint8Array(this.buffer.length), this.steps.copy(), statistics);
    copy.buffer.set(this.buffer.subarray(0, this.length));
    copy.length = this.length;
    return copy;
  }

  add(space: ChunkSpace, index: number, encoding: RecordEncoding): void {
    if (this.length + MAX_RECORD_BYTES > this.buffer.length) {
      const grown = new Uint8Array(2 * this.buffer.length + MAX_RECORD_BYTES);
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    const start = this.length;
    this.length = encodeRecord({ space, index, encoding }, this.buffer, start, this.steps);
    const kind = this.statistics[encoding.kind];
    kind.count++;
    kind.bytes += this.length - start;
  }

  variant(): SegmentVariant {
    return { bytes: this.buffer.subarray(0, this.length), statistics: this.statistics };
  }
}

/**
 * The uncompressed records of one segment. A record may come with an alternative encoding of the same
 * chunk; from the first one on the segment is also built with every alternative taken, and the writer
 * keeps whichever variant compresses smaller. The cut follows the first variant's length.
 */
export class SegmentBuilder {
  private readonly primary: EncodedRecords;
  private alternative: EncodedRecords | undefined;
  records = 0;
  firstIndex = Number.POSITIVE_INFINITY;
  lastIndex = -1;

  constructor(
    readonly space: ChunkSpace,
    readonly cutBytes: number,
  ) {
    this.primary = EncodedRecords.empty(cutBytes + MAX_RECORD_BYTES);
  }

  /** Appends (the record, and `alternative`, must have passed recordProblem). Callers seal once `full`. */
  add(record: OverlayRecord, alternative?: RecordEncoding): void {
    if (alternative !== undefined) this.alternative ??= this.primary.copy();
    this.primary.add(record.space, record.index, record.encoding);
    this.alternative?.add(record.space, record.index, alternative ?? record.encoding);
    this.records++;
    this.firstIndex = Math.min(this.firstIndex, record.index);
    this.lastIndex = Math.max(this.lastIndex, record.index);
  }

  get full(): boolean {
    return this.primary.length >= this.cutBytes;
  }

  /** The variants (one, or two with alternatives), each over a buffer nothing else uses (transferable). */
  take(): SegmentVariant[] {
    const variants = [this.primary.variant()];
    if (this.alternative !== undefined) variants.push(this.alternative.variant());
    return variants;
  }
}
