import { createHash } from 'node:crypto';
import { type ChunkIndex, decodeChunkIndex } from './chunk-index.js';
import { OverlayFormatError } from './errors.js';
import { compressedBound, OVERLAY_LIMITS } from './limits.js';
import { describeIssues, OVERLAY_FORMAT_VERSION, OverlayManifest, type SegmentInfo } from './manifest.js';
import type { ChunkSpace } from './records.js';
import type { ZipDirectory, ZipEntry } from './zip-directory.js';

// The checks openOverlay makes, shared with openOverlayUpload, which meets the same data in another order.

export const MANIFEST = 'manifest.json';
export const CHUNK_INDEX = 'chunk-index.bin';
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Declared sizes by entry name; manifest.json's own size is not declared (-1). */
export type DeclaredEntries = Map<string, { compressed: number; uncompressed: number }>;

export async function readManifest(zip: ZipDirectory): Promise<OverlayManifest> {
  const entry = zip.entries.get(MANIFEST);
  if (entry === undefined) throw new OverlayFormatError('bad-entries', `missing entry "${MANIFEST}"`);
  checkManifestSize(entry.size);
  return parseManifest(await zip.readChecked(entry));
}

export function checkManifestSize(size: number): void {
  if (size > OVERLAY_LIMITS.maxManifestBytes)
    throw new OverlayFormatError('bad-size', `${MANIFEST} is ${size} bytes, above the cap`);
}

/** JSON, then the format version (so another version gets a clear message), then the schema. */
export function parseManifest(bytes: Uint8Array): OverlayManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new OverlayFormatError('bad-manifest', `${MANIFEST} is not JSON (${(e as Error).message})`, {
      cause: e,
    });
  }
  const version = (json as { formatVersion?: unknown } | null)?.formatVersion;
  if (version !== OVERLAY_FORMAT_VERSION) {
    const older = typeof version === 'number' && version < OVERLAY_FORMAT_VERSION;
    throw new OverlayFormatError(
      'bad-manifest',
      `overlay formatVersion ${JSON.stringify(version)} is not supported (this reader knows ${OVERLAY_FORMAT_VERSION})` +
        (older ? ': an older cloudlet wrote it; create the overlay again with this one' : ''),
    );
  }
  const parsed = OverlayManifest.safeParse(json);
  if (!parsed.success)
    throw new OverlayFormatError(
      'bad-manifest',
      `${MANIFEST} fails the schema: ${describeIssues(parsed.error)}`,
    );
  return parsed.data;
}

/** Every entry the manifest implies, with its sizes; refuses an entry listed twice. */
export function declaredEntries(manifest: OverlayManifest): DeclaredEntries {
  const declared: DeclaredEntries = new Map([
    [MANIFEST, { compressed: -1, uncompressed: -1 }],
    [CHUNK_INDEX, { compressed: manifest.chunkIndex.bytes, uncompressed: manifest.chunkIndex.bytes }],
  ]);
  for (const s of [...manifest.segments, ...manifest.blobs]) {
    if (declared.has(s.entry))
      throw new OverlayFormatError('bad-manifest', `entry "${s.entry}" listed twice`);
    declared.set(s.entry, { compressed: s.compressedBytes, uncompressed: s.uncompressedBytes });
  }
  return declared;
}

/** Entry `name`, `actual` bytes in the zip, against what the manifest declares for it. */
export function checkEntrySize(name: string, actual: number, declared: DeclaredEntries): void {
  const sizes = declared.get(name);
  if (sizes === undefined) throw new OverlayFormatError('bad-entries', `unexpected entry "${name}"`);
  const { compressed, uncompressed } = sizes;
  if (compressed >= 0 && actual !== compressed)
    throw new OverlayFormatError(
      'bad-size',
      `entry "${name}" is ${actual} bytes, the manifest says ${compressed}`,
    );
  if (compressed > compressedBound(uncompressed))
    throw new OverlayFormatError(
      'bad-size',
      `entry "${name}" is ${compressed} bytes, more than ${uncompressed} bytes can compress to`,
    );
}

export function checkSegmentOrder(manifest: OverlayManifest): void {
  const prefix = manifest.segments.findIndex((s) => s.space === 'disk');
  if (prefix >= 0 && manifest.segments.slice(prefix).some((s) => s.space === 'memory'))
    throw new OverlayFormatError('bad-manifest', 'a memory segment follows a disk segment');
}

/** The entries must be exactly the manifest's, with the sizes it declares. */
export function checkEntries(zip: ZipDirectory, manifest: OverlayManifest): Map<string, ZipEntry> {
  const declared = declaredEntries(manifest);
  for (const name of declared.keys())
    if (!zip.entries.has(name)) throw new OverlayFormatError('bad-entries', `missing entry "${name}"`);
  for (const name of zip.entries.keys())
    if (!declared.has(name)) throw new OverlayFormatError('bad-entries', `unexpected entry "${name}"`);
  for (const name of declared.keys())
    checkEntrySize(name, (zip.entries.get(name) as ZipEntry).size, declared);
  checkSegmentOrder(manifest);
  return zip.entries;
}

/** chunk-index.bin's bytes: its sha256, its structure, and every chunk inside its segment's range. */
export function checkChunkIndex(bytes: Uint8Array, manifest: OverlayManifest): ChunkIndex {
  if (sha256(bytes) !== manifest.chunkIndex.sha256)
    throw new OverlayFormatError('hash-mismatch', `${CHUNK_INDEX} does not match its sha256 in the manifest`);
  const count = (space: ChunkSpace) =>
    manifest.segments.filter((s) => s.space === space).reduce((n, s) => n + s.records, 0);
  const index = decodeChunkIndex(bytes, {
    memory: count('memory'),
    disk: count('disk'),
    segments: manifest.segments.length,
  });
  for (const space of ['memory', 'disk'] as const) {
    const { indexes, segments } = index[space];
    for (let i = 0; i < indexes.length; i++) {
      const segment = manifest.segments[segments[i] as number] as SegmentInfo;
      const at = indexes[i] as number;
      if (segment.space !== space || at < segment.firstIndex || at > segment.lastIndex)
        throw new OverlayFormatError(
          'bad-record',
          `${CHUNK_INDEX} puts ${space} chunk ${at} in a segment without it`,
        );
    }
  }
  return index;
}
