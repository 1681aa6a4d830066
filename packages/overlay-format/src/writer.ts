import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { encodeChunkIndex, sortedSpaceIndex } from './chunk-index.js';
import { type CodecPool, createCodecPool } from './codec-pool.js';
import type { SegmentCodec } from './codecs/segment-codec.js';
import { zstdCodec } from './codecs/zstd-codec.js';
import { OverlayFormatError } from './errors.js';
import { OVERLAY_LIMITS } from './limits.js';
import {
  BLOB_NAME,
  type BlobInfo,
  chunksOf,
  describeIssues,
  OVERLAY_FORMAT_VERSION,
  OverlayManifest,
  type OverlayManifestFields,
  type SegmentInfo,
} from './manifest.js';
import { recordProblem } from './record-codec.js';
import type { ChunkSpace, OverlayRecord, RecordEncoding } from './records.js';
import { SegmentBuilder, type SegmentVariant } from './segment-builder.js';
import { checkSelfReferences } from './self-references.js';
import { addStatistics, emptyStatistics } from './statistics.js';
import { TOOL } from './tool.js';
import { createZipOutput } from './zip-output.js';

export interface OverlayWriterOptions {
  /** The overlay zip to create; staged and written as temp files beside it, renamed at the end. */
  file: string;
  /** Default: zstd. */
  codec?: SegmentCodec;
  /** Default: the codec's default level. */
  level?: number;
  /** Aim for segments of about this many compressed bytes; default 1 MiB. */
  targetSegmentBytes?: number;
  /** Compression threads; default one per core; 0 compresses on this thread. */
  workers?: number;
}

export interface OverlaySummary {
  file: string;
  /** Bytes of the whole zip. */
  bytes: number;
  manifest: OverlayManifest;
}

export interface OverlayWriter {
  /**
   * Resolves when the writer can take more (backpressure). All memory records come before disk records.
   * `alternative`: another encoding of the same chunk (xor, vcdiff or raw, as the record's own must be then);
   * a segment holding any is compressed both ways — each alternative taken, none taken — and the smaller
   * is kept (e.g. a page's VCDIFF form against its raw bytes, whichever the codec finds more in).
   */
  add(record: OverlayRecord, alternative?: RecordEncoding): Promise<void>;
  /** A named side entry (memory stream prologue, device state...), compressed with the codec. */
  addBlob(name: string, bytes: Uint8Array): Promise<void>;
  /** Writes the zip (manifest, chunk index, blobs, segments) from the staged entries and renames it into place. */
  finish(fields: OverlayManifestFields): Promise<OverlaySummary>;
  /** Stops and removes the temp file (also done on any error). */
  abort(): Promise<void>;
}

const MIN_CUT_BYTES = 64 * 1024;
const MAX_CUT_BYTES = OVERLAY_LIMITS.maxSegmentBytes / 2;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const misuse = (message: string) => new OverlayFormatError('invalid-use', message);
const PAYLOAD_KINDS = new Set(['xor', 'vcdiff', 'raw']);

/** Why `alternative` cannot stand in for `record`'s encoding, or undefined. */
function alternativeProblem(record: OverlayRecord, alternative: RecordEncoding): string | undefined {
  if (!PAYLOAD_KINDS.has(record.encoding.kind) || !PAYLOAD_KINDS.has(alternative.kind))
    return `an alternative needs xor, vcdiff or raw on both sides, not ${record.encoding.kind} / ${alternative.kind}`;
  return recordProblem({ ...record, encoding: alternative });
}

export function createOverlayWriter(options: OverlayWriterOptions): OverlayWriter {
  const codec = options.codec ?? zstdCodec();
  const level = options.level ?? codec.defaultLevel;
  const target = options.targetSegmentBytes ?? 1024 * 1024;
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`workers ${workers}`);
  if (!Number.isInteger(target) || target < 256)
    throw new RangeError(`targetSegmentBytes ${target} (min 256)`);
  if (!Number.isInteger(level)) throw new RangeError(`level ${level}`);
  const pool = createCodecPool(codec, workers, level);
  const maxInFlight = Math.max(2, 2 * workers);
  const zip = createZipOutput(options.file);

  const segments: SegmentInfo[] = [];
  const inFlightSegments: { number: number }[] = [];
  const pendingBlobs = new Set<string>();
  /** `at`: position of the referring record in add() order (memory records first, so one sequence). */
  const selfReferences: { at: number; to: { space: ChunkSpace; index: number } }[] = [];
  const blobs: BlobInfo[] = [];
  const statistics = emptyStatistics();
  const chunks = {
    memory: { indexes: [] as number[], segments: [] as number[] },
    disk: { indexes: [] as number[], segments: [] as number[] },
  };
  /** Largest index seen per bound, checked against the manifest fields at finish. */
  const maxima = { memory: -1, disk: -1, 'base-memory': -1, 'base-disk': -1 };
  let current: SegmentBuilder | undefined;
  let lastSpace: ChunkSpace = 'memory';
  let cutBytes = target;
  let seenIn = 0;
  let seenOut = 0;
  /** Entries are staged in the order they were sealed; each link resolves once its bytes are in the staging file. */
  let tail: Promise<void> = Promise.resolve();
  const inFlight: Promise<void>[] = [];
  let failure: unknown;
  let state: 'open' | 'finishing' | 'done' | 'failed' = 'open';

  /** Every caller waits for the same cleanup, so no rejection reaches a caller before the temp files are gone. */
  let cleanup: Promise<void> | undefined;
  const fail = async (error: unknown): Promise<never> => {
    if (state !== 'failed') {
      state = 'failed';
      failure = error;
      cleanup = pool.close().then(() => zip.discard());
    }
    await cleanup;
    throw failure;
  };
  const ensureOpen = async () => {
    if (state === 'failed') await fail(failure);
    if (state !== 'open') throw misuse('the overlay writer is finished');
  };

  /** Queues compressed bytes for the zip, in order; `onDone` sees them before the entry is added. */
  const enqueue = <T extends { compressed: Uint8Array }>(
    work: Promise<T>,
    entry: string,
    onDone: (done: T) => void,
  ) => {
    work.catch(() => {}); // observed through `tail`
    const link = tail.then(async () => {
      const done = await work;
      onDone(done);
      await zip.stage(entry, done.compressed);
    });
    tail = link;
    inFlight.push(link);
    link.catch((e: unknown) => void fail(e).catch(() => {}));
  };

  const seal = () => {
    const segment = current;
    current = undefined;
    if (segment === undefined || segment.records === 0) return;
    const number = segments.length + inFlightSegments.length;
    const entry = `segments/${String(number).padStart(6, '0')}`;
    const variants = segment.take();
    const cutLength = (variants[0] as SegmentVariant).bytes.length;
    const placeholder = { number };
    inFlightSegments.push(placeholder);
    enqueue(smallestOf(pool, variants), entry, ({ compressed, uncompressedBytes, statistics: kept }) => {
      addStatistics(statistics[segment.space], kept);
      inFlightSegments.shift();
      segments.push({
        entry,
        sha256: sha256(compressed),
        compressedBytes: compressed.length,
        uncompressedBytes,
        records: segment.records,
        space: segment.space,
        firstIndex: segment.firstIndex,
        lastIndex: segment.lastIndex,
      });
      // Cut the next segments so that they compress to about `target` at the ratio seen so far; the cut
      // counts the first variant's bytes, so the ratio is theirs to what was kept.
      seenIn += cutLength;
      seenOut += compressed.length;
      cutBytes = Math.round(Math.min(MAX_CUT_BYTES, Math.max(MIN_CUT_BYTES, (target * seenIn) / seenOut)));
    });
  };
  const segmentCount = () => segments.length + inFlightSegments.length;

  /**
   * Holds the producer while too many segments are being compressed or staged: each link waits for its
   * bytes to reach the staging file, so a slow disk holds the producer too.
   */
  const waitForRoom = async () => {
    while (inFlight.length >= maxInFlight) await inFlight.shift();
  };

  return {
    async add(record, alternative) {
      await ensureOpen();
      const problem =
        recordProblem(record) ??
        (alternative === undefined ? undefined : alternativeProblem(record, alternative));
      if (problem !== undefined)
        return fail(misuse(`bad ${record.space} record ${record.index}: ${problem}`));
      if (record.space === 'memory' && lastSpace === 'disk')
        return fail(misuse(`memory record ${record.index} after disk records: memory records come first`));
      lastSpace = record.space;
      if (current !== undefined && current.space !== record.space) seal();
      current ??= new SegmentBuilder(record.space, cutBytes);
      current.add(record, alternative);
      const { encoding } = record;
      chunks[record.space].indexes.push(record.index);
      chunks[record.space].segments.push(segmentCount());
      maxima[record.space] = Math.max(maxima[record.space], record.index);
      if (encoding.kind === 'base-memory' || encoding.kind === 'base-disk')
        maxima[encoding.kind] = Math.max(maxima[encoding.kind], encoding.index);
      if (encoding.kind === 'self') {
        maxima[encoding.space] = Math.max(maxima[encoding.space], encoding.index);
        selfReferences.push({
          at: chunks.memory.indexes.length + chunks.disk.indexes.length - 1,
          to: encoding,
        });
      }
      if (current.full) seal();
      await waitForRoom().catch(fail);
    },

    async addBlob(name, bytes) {
      await ensureOpen();
      if (!BLOB_NAME.test(name)) return fail(misuse(`blob name ${JSON.stringify(name)} is not [a-z0-9._-]`));
      if (blobs.some((b) => b.name === name) || pendingBlobs.has(name))
        return fail(misuse(`blob ${JSON.stringify(name)} added twice`));
      if (bytes.length > OVERLAY_LIMITS.maxBlobBytes)
        return fail(misuse(`blob ${name} is ${bytes.length} bytes, above ${OVERLAY_LIMITS.maxBlobBytes}`));
      if (pendingBlobs.size + blobs.length >= OVERLAY_LIMITS.maxBlobs) return fail(misuse('too many blobs'));
      pendingBlobs.add(name);
      const entry = `blobs/${name}`;
      // A copy (Buffer#slice is a view): compress transfers its input to a worker.
      const work = pool.compress(new Uint8Array(bytes)).then((compressed) => ({ compressed }));
      enqueue(work, entry, ({ compressed }) => {
        pendingBlobs.delete(name);
        blobs.push({
          name,
          entry,
          sha256: sha256(compressed),
          compressedBytes: compressed.length,
          uncompressedBytes: bytes.length,
        });
      });
      await waitForRoom().catch(fail);
    },

    async finish(fields) {
      await ensureOpen();
      state = 'finishing';
      try {
        seal();
        await tail;
        checkBounds(fields, maxima);
        const sorted = {
          memory: sortedSpaceIndex(chunks.memory.indexes, chunks.memory.segments, 'memory'),
          disk: sortedSpaceIndex(chunks.disk.indexes, chunks.disk.segments, 'disk'),
        };
        checkSelfReferences(selfReferences, sorted);
        const chunkIndex = encodeChunkIndex(sorted);
        const parsed = OverlayManifest.safeParse({
          formatVersion: OVERLAY_FORMAT_VERSION,
          tool: TOOL,
          createdAt: fields.createdAt ?? new Date().toISOString(),
          base: fields.base,
          vm: fields.vm,
          codec: { name: codec.name, level },
          segments,
          chunkIndex: { entry: 'chunk-index.bin', sha256: sha256(chunkIndex), bytes: chunkIndex.length },
          blobs,
          statistics,
        });
        if (!parsed.success) throw misuse(`the manifest fails its schema: ${describeIssues(parsed.error)}`);
        await pool.close();
        // Manifest first, then what a sequential reader needs before any segment (docs/overlay-format.md).
        const head = [
          { name: 'manifest.json', data: Buffer.from(JSON.stringify(parsed.data, null, 1)) },
          { name: 'chunk-index.bin', data: chunkIndex },
        ];
        const order = [...blobs, ...segments].map((e) => e.entry);
        const bytes = await zip.commit(head, order);
        state = 'done';
        return { file: options.file, bytes, manifest: parsed.data };
      } catch (e) {
        state = 'open';
        return fail(e);
      }
    },

    async abort() {
      if (state === 'done' || state === 'failed') return;
      await fail(misuse('aborted')).catch(() => {});
    },
  };
}

/** Compresses every variant; the smallest output, with its variant's length and statistics. */
async function smallestOf(pool: CodecPool, variants: SegmentVariant[]) {
  // Lengths first: compress() transfers each buffer to a worker, which empties it here.
  const kept = variants.map((v) => ({ uncompressedBytes: v.bytes.length, statistics: v.statistics }));
  const outputs = await Promise.all(variants.map((v) => pool.compress(v.bytes)));
  const best = outputs.reduce((b, o, i) => (o.length < (outputs[b] as Uint8Array).length ? i : b), 0);
  return { compressed: outputs[best] as Uint8Array, ...(kept[best] as (typeof kept)[number]) };
}

function checkBounds(
  fields: OverlayManifestFields,
  maxima: Record<'memory' | 'disk' | 'base-memory' | 'base-disk', number>,
): void {
  const limits = {
    memory: fields.vm.memoryPages,
    disk: chunksOf(fields.vm.diskBytes),
    'base-memory': fields.base.memoryPages,
    'base-disk': chunksOf(fields.base.diskBytes),
  };
  for (const [what, max] of Object.entries(maxima) as [keyof typeof limits, number][])
    if (max >= limits[what])
      throw misuse(`a ${what} index ${max} is beyond the ${limits[what]} chunks declared`);
}
