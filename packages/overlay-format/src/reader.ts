import type { ChunkIndex } from './chunk-index.js';
import { type ChunkSource, fileChunkSource } from './chunk-source.js';
import { type CodecPool, createCodecPool } from './codec-pool.js';
import { segmentCodec } from './codecs/codec-by-name.js';
import { OverlayFormatError } from './errors.js';
import { inOrder } from './in-order.js';
import { OVERLAY_LIMITS } from './limits.js';
import { chunksOf, type OverlayManifest, type SegmentInfo } from './manifest.js';
import { CHUNK_INDEX, checkChunkIndex, checkEntries, readManifest } from './overlay-checks.js';
import { decodeRecords, type RecordBounds } from './record-codec.js';
import type { ChunkSpace, OverlayRecord } from './records.js';
import { openZipDirectory, type ZipDirectory, type ZipEntry } from './zip-directory.js';

export interface OverlayReader {
  readonly manifest: OverlayManifest;
  readonly segments: readonly SegmentInfo[];
  /** The segment holding chunk (space, index), or undefined if the overlay does not change it. */
  segmentOf(space: ChunkSpace, index: number): number | undefined;
  /** Segment i's records, after checking its sha256, decompressed size and every record. */
  readSegment(i: number): Promise<OverlayRecord[]>;
  /**
   * Every segment in file order, with up to `inFlight` (default 4) reads and decompressions running
   * ahead of the consumer. A failing segment's error surfaces when the consumer reaches it; breaking
   * out of the loop waits for the reads already running and starts none.
   */
  segmentsInOrder(options?: SegmentsInOrderOptions): AsyncIterable<OverlaySegment>;
  /** Every record in file order: memory, then disk (segmentsInOrder with its defaults). */
  records(): AsyncIterable<OverlayRecord>;
  readBlob(name: string): Promise<Uint8Array>;
  /** Closes the source (if openOverlay opened it) and terminates the decompression workers. */
  close(): Promise<void>;
}

export interface OpenOverlayOptions {
  /** Decompression threads, started at the first segment or blob read; default 2, 0 = this thread. */
  workers?: number;
}

export interface SegmentsInOrderOptions {
  /** Segments read and decompressed ahead of the consumer; default 4. */
  inFlight?: number;
}

export interface OverlaySegment {
  index: number;
  info: SegmentInfo;
  records: OverlayRecord[];
}

/**
 * Opens an overlay and checks everything that can be checked without reading the segments: zip
 * structure, entry names and methods, the manifest's schema and version, the entry set and every size,
 * the chunk index. Segments are checked as they are read.
 */
export async function openOverlay(
  source: string | ChunkSource,
  options: OpenOverlayOptions = {},
): Promise<OverlayReader> {
  const workers = options.workers ?? 2;
  if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`workers ${workers}`);
  const chunkSource = typeof source === 'string' ? await fileChunkSource(source) : source;
  const closeSource = async () => (typeof source === 'string' ? chunkSource.close?.() : undefined);
  let zip: ZipDirectory | undefined;
  try {
    zip = await openZipDirectory(chunkSource, OVERLAY_LIMITS.maxSegments + OVERLAY_LIMITS.maxBlobs + 2);
    const opened = zip;
    const manifest = await readManifest(zip);
    const entries = checkEntries(zip, manifest);
    const read = (name: string) => opened.read(entries.get(name) as ZipEntry);
    const index = checkChunkIndex(await read(CHUNK_INDEX), manifest);
    return createReader({ read, manifest, index, workers }, async () => {
      opened.close();
      await closeSource();
    });
  } catch (e) {
    zip?.close();
    await closeSource();
    throw e;
  }
}

/** A checked overlay, whatever it is read from: a zip directory, or an upload still arriving. */
export interface OpenedOverlay {
  /** An entry's stored bytes (the upload's wait until they have arrived). */
  read(entry: string): Promise<Uint8Array>;
  manifest: OverlayManifest;
  index: ChunkIndex;
  workers: number;
}

/** `close` runs after the reads in flight have settled. */
export function createReader(opened: OpenedOverlay, close: () => Promise<void>): OverlayReader {
  const { manifest, index } = opened;
  const bounds: RecordBounds = {
    memoryPages: manifest.vm.memoryPages,
    diskChunks: chunksOf(manifest.vm.diskBytes),
    baseMemoryPages: manifest.base.memoryPages,
    baseDiskChunks: chunksOf(manifest.base.diskBytes),
  };
  // Started at the first read, so opening an overlay for its manifest starts no threads.
  let pool: CodecPool | undefined;
  let closed = false;
  const closedError = () => new OverlayFormatError('invalid-use', 'the overlay reader is closed');
  /** Reads still running, so close() can wait for them instead of leaving them behind. */
  const running = new Set<Promise<unknown>>();
  const unpack = (entryName: string, sha: string, size: number) => {
    if (closed) return Promise.reject(closedError());
    const work = (async () => {
      const packed = await opened.read(entryName);
      pool ??= createCodecPool(segmentCodec(manifest.codec.name), opened.workers);
      // The sha256 runs in the worker beside the decompression: SHA-NI hashes a 1 MiB segment in ~0.55 ms,
      // little, but serial main-thread work; measured with a busy consumer (bench/read-workers.mjs,
      // 128 MiB, CONSUME_MS_PER_MB=2, 2 workers) it read at 253–261 MB/s in the worker against 187–249
      // MB/s on the main thread, and without a consumer the two were within noise.
      return pool.decompress(packed, size, { sha256: sha, what: `entry "${entryName}"` });
    })();
    running.add(work);
    void work.finally(() => running.delete(work)).catch(() => {});
    return work;
  };
  /** Errors of reading a segment name it by number and entry, whichever step raised them. */
  const unpackSegment = async (i: number, info: SegmentInfo) => {
    try {
      return await unpack(info.entry, info.sha256, info.uncompressedBytes);
    } catch (e) {
      if (!(e instanceof OverlayFormatError) || e.code === 'invalid-use') throw e;
      throw new OverlayFormatError(e.code, `segment ${i} ("${info.entry}"): ${e.message}`, { cause: e });
    }
  };
  const readSegment = async (i: number) => {
    const info = manifest.segments[i];
    if (info === undefined) throw new RangeError(`segment ${i} of ${manifest.segments.length}`);
    const data = await unpackSegment(i, info);
    const records = decodeRecords(data, {
      space: info.space,
      count: info.records,
      bounds,
      what: `segment ${i} ("${info.entry}")`,
    });
    // Keys of this segment's chunks seen so far: memory index i → i, disk index i → -i - 1.
    const seen = new Set<number>();
    const key = (space: ChunkSpace, at: number) => (space === 'memory' ? at : -at - 1);
    for (const r of records) {
      if (index.segmentOf(r.space, r.index) !== i)
        throw new OverlayFormatError(
          'bad-record',
          `segment ${i} holds ${r.space} chunk ${r.index}, the chunk index disagrees`,
        );
      const e = r.encoding;
      if (e.kind === 'self') {
        // The target must already be rebuilt when this record is applied: an earlier segment, or earlier here.
        const target = index.segmentOf(e.space, e.index);
        if (target === undefined || target > i || (target === i && !seen.has(key(e.space, e.index))))
          throw new OverlayFormatError(
            'bad-record',
            `segment ${i} refers to ${e.space} chunk ${e.index}, ${target === undefined ? 'not in the overlay' : 'which comes later'}`,
          );
      }
      seen.add(key(r.space, r.index));
    }
    return records;
  };
  async function* segmentsInOrder(options: SegmentsInOrderOptions = {}) {
    const segments = inOrder(manifest.segments.length, options.inFlight ?? 4, async (i) => ({
      index: i,
      info: manifest.segments[i] as SegmentInfo,
      records: await readSegment(i),
    }));
    for await (const segment of segments) {
      // A segment finished before close() is not handed out after it either.
      if (closed) throw closedError();
      yield segment;
    }
  }
  return {
    manifest,
    segments: manifest.segments,
    segmentOf: (space, i) => index.segmentOf(space, i),
    readSegment,
    segmentsInOrder,
    async *records() {
      for await (const segment of segmentsInOrder()) yield* segment.records;
    },
    async readBlob(name) {
      const blob = manifest.blobs.find((b) => b.name === name);
      if (blob === undefined)
        throw new OverlayFormatError('invalid-use', `the overlay has no blob "${name}"`);
      return unpack(blob.entry, blob.sha256, blob.uncompressedBytes);
    },
    async close() {
      closed = true;
      await pool?.close();
      await Promise.allSettled(running);
      await close();
    },
  };
}
