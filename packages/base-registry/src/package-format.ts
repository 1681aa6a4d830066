import { BASE_FILES } from './layout.js';
import type { BaseManifest } from './manifest.js';

/**
 * The export package: a zip of stored (uncompressed) members — base.json, then each bulk file
 * compressed with zstd as `<name>.zst`. Stored members keep the zip trivially seekable and let zstd
 * do the compression (it squeezes runs of zeros to almost nothing and is much faster than deflate).
 * The indexes are not shipped: the importer must rebuild them anyway to verify the content.
 */
export const MANIFEST_MEMBER = 'base.json';

export type BulkFile = 'disk' | 'memory' | 'kernel' | 'initrd';

export const BULK_MEMBERS: Readonly<Record<BulkFile, string>> = {
  disk: `${BASE_FILES.disk}.zst`,
  memory: `${BASE_FILES.memory}.zst`,
  kernel: `${BASE_FILES.kernel}.zst`,
  initrd: `${BASE_FILES.initrd}.zst`,
};

/** Every name a package may contain. */
export const KNOWN_MEMBERS: ReadonlySet<string> = new Set([MANIFEST_MEMBER, ...Object.values(BULK_MEMBERS)]);

/** The bulk files a manifest says its package holds, with their declared (decompressed) sizes. */
export function bulkFilesOf(manifest: BaseManifest): { file: BulkFile; bytes: number }[] {
  const files: { file: BulkFile; bytes: number }[] = [
    { file: 'disk', bytes: manifest.disk.bytes },
    { file: 'memory', bytes: manifest.memory.bytes },
  ];
  if (manifest.kernel) files.push({ file: 'kernel', bytes: manifest.kernel.bytes });
  if (manifest.initrd) files.push({ file: 'initrd', bytes: manifest.initrd.bytes });
  return files;
}

/** zstd's worst case (ZSTD_COMPRESSBOUND) plus a little per-frame slack: no honest member is larger. */
export function zstdBound(bytes: number): number {
  const small = bytes < 128 * 1024 ? (128 * 1024 - bytes) / 2048 : 0;
  return bytes + bytes / 256 + small + 4096;
}
