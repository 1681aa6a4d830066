import { VmSpec } from '@cloudlet/qemu-driver';
import { z } from 'zod';
import { OVERLAY_LIMITS } from './limits.js';
import { CHUNK_SPACES, PAGE_SIZE, RECORD_KINDS } from './records.js';

export const OVERLAY_FORMAT_VERSION = 5;

const count = z.number().int().nonnegative();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const chunkCount = count.max(OVERLAY_LIMITS.maxChunks);
/** Entry names are fixed patterns, so the zip-slip checks only ever compare against these. */
const segmentEntry = z.string().regex(/^segments\/[0-9]{6,7}$/);
export const BLOB_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const KindStatistics = z.strictObject({ count, bytes: count });
/** Per record kind: how many records, and how many bytes they take encoded (before compression). */
const SpaceStatistics = z.strictObject(
  Object.fromEntries(RECORD_KINDS.map((k) => [k, KindStatistics])) as Record<
    (typeof RECORD_KINDS)[number],
    typeof KindStatistics
  >,
);

export const SegmentInfo = z
  .strictObject({
    entry: segmentEntry,
    sha256,
    compressedBytes: count,
    uncompressedBytes: count.max(OVERLAY_LIMITS.maxSegmentBytes),
    records: count.min(1),
    space: z.enum(CHUNK_SPACES),
    /** Smallest and largest chunk index of the segment's records. */
    firstIndex: count,
    lastIndex: count,
  })
  .refine((s) => s.firstIndex <= s.lastIndex, 'firstIndex > lastIndex')
  .refine((s) => s.records * 2 <= s.uncompressedBytes, 'more records than the bytes can hold');
export type SegmentInfo = z.infer<typeof SegmentInfo>;

export const BlobInfo = z.strictObject({
  name: z.string().regex(BLOB_NAME),
  entry: z.string().regex(/^blobs\/[a-z0-9][a-z0-9._-]{0,63}$/),
  sha256,
  compressedBytes: count,
  uncompressedBytes: count.max(OVERLAY_LIMITS.maxBlobBytes),
});
export type BlobInfo = z.infer<typeof BlobInfo>;

export const RamBlock = z.strictObject({ name: z.string().min(1), bytes: count });
export type RamBlock = z.infer<typeof RamBlock>;

export const OverlayManifest = z
  .strictObject({
    formatVersion: z.literal(OVERLAY_FORMAT_VERSION),
    tool: z.strictObject({ name: z.string(), version: z.string() }),
    createdAt: z.iso.datetime(),
    base: z.strictObject({ id: sha256, diskBytes: count, memoryPages: chunkCount }),
    vm: z.strictObject({
      spec: VmSpec,
      diskBytes: count,
      memoryPages: chunkCount,
      /** In migration-stream order; flat page index = pages of the blocks before + offset / PAGE_SIZE. */
      ramBlocks: z.array(RamBlock),
    }),
    codec: z.strictObject({ name: z.enum(['zstd', 'xz']), level: z.number().int() }),
    segments: z.array(SegmentInfo).max(OVERLAY_LIMITS.maxSegments),
    chunkIndex: z.strictObject({ entry: z.literal('chunk-index.bin'), sha256, bytes: count }),
    blobs: z.array(BlobInfo).max(OVERLAY_LIMITS.maxBlobs),
    statistics: z.strictObject({ memory: SpaceStatistics, disk: SpaceStatistics }),
  })
  .refine((m) => m.base.diskBytes / PAGE_SIZE <= OVERLAY_LIMITS.maxChunks, 'base.diskBytes beyond the cap')
  .refine((m) => m.vm.diskBytes / PAGE_SIZE <= OVERLAY_LIMITS.maxChunks, 'vm.diskBytes beyond the cap')
  .refine(
    (m) => m.vm.ramBlocks.reduce((n, b) => n + Math.ceil(b.bytes / PAGE_SIZE), 0) === m.vm.memoryPages,
    'vm.ramBlocks do not add up to vm.memoryPages',
  );
export type OverlayManifest = z.infer<typeof OverlayManifest>;
export type OverlayStatistics = OverlayManifest['statistics'];

/** What the writer's caller supplies; the rest of the manifest the writer works out. */
export interface OverlayManifestFields {
  base: OverlayManifest['base'];
  vm: OverlayManifest['vm'];
  /** Default: now. Injected for reproducible files in tests. */
  createdAt?: string;
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Chunks in a space of `bytes` bytes (a short last chunk counts). */
export function chunksOf(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE);
}
