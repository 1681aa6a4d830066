import type { OverlayManifest } from './manifest.js';
import { CHUNK_SPACES, RECORD_KINDS, type RecordKind } from './records.js';

/** What `cloudlet info-overlay` prints: plain data, formatting is the CLI's. */
export interface OverlayDescription {
  formatVersion: number;
  baseId: string;
  createdAt: string;
  tool: string;
  codec: string;
  vm: { diskBytes: number; memoryPages: number; memoryBytes: number };
  /** Sums over the segment table. */
  compressedBytes: number;
  uncompressedBytes: number;
  /** Per space: chunks in the overlay, and per record kind how many and their encoded bytes. */
  spaces: Record<
    'memory' | 'disk',
    { chunks: number; kinds: Record<RecordKind, { count: number; bytes: number }> }
  >;
  segments: {
    entry: string;
    space: string;
    records: number;
    compressedBytes: number;
    uncompressedBytes: number;
    firstIndex: number;
    lastIndex: number;
  }[];
  blobs: { name: string; compressedBytes: number; uncompressedBytes: number }[];
}

export function describeOverlay(manifest: OverlayManifest): OverlayDescription {
  const spaces = Object.fromEntries(
    CHUNK_SPACES.map((space) => {
      const kinds = manifest.statistics[space];
      return [space, { chunks: RECORD_KINDS.reduce((n, k) => n + kinds[k].count, 0), kinds }];
    }),
  ) as OverlayDescription['spaces'];
  return {
    formatVersion: manifest.formatVersion,
    baseId: manifest.base.id,
    createdAt: manifest.createdAt,
    tool: `${manifest.tool.name} ${manifest.tool.version}`,
    codec: `${manifest.codec.name} level ${manifest.codec.level}`,
    vm: {
      diskBytes: manifest.vm.diskBytes,
      memoryPages: manifest.vm.memoryPages,
      memoryBytes: manifest.vm.ramBlocks.reduce((n, b) => n + b.bytes, 0),
    },
    compressedBytes: manifest.segments.reduce((n, s) => n + s.compressedBytes, 0),
    uncompressedBytes: manifest.segments.reduce((n, s) => n + s.uncompressedBytes, 0),
    spaces,
    segments: manifest.segments.map(
      ({ entry, space, records, compressedBytes, uncompressedBytes, firstIndex, lastIndex }) => ({
        entry,
        space,
        records,
        compressedBytes,
        uncompressedBytes,
        firstIndex,
        lastIndex,
      }),
    ),
    blobs: manifest.blobs.map(({ name, compressedBytes, uncompressedBytes }) => ({
      name,
      compressedBytes,
      uncompressedBytes,
    })),
  };
}
