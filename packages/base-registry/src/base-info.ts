import { join } from 'node:path';
import type { VmSpec } from '@cloudlet/qemu-driver';
import type { BaseRow } from './database.js';
import { RegistryError } from './errors.js';
import { BASE_FILES, type HomeLayout } from './layout.js';
import { type BaseManifest, BaseManifestSchema, describeIssues, type HostFacts } from './manifest.js';
import { localSpec } from './portable-spec.js';

/** Absolute paths of a base's files. kernel/initrd exist when the spec boots a kernel directly. */
export interface BasePaths {
  dir: string;
  disk: string;
  memory: string;
  diskIndex: string;
  memoryIndex: string;
  manifest: string;
  kernel?: string;
  initrd?: string;
}

/** A registered base as callers see it. */
export interface BaseInfo {
  id: string;
  label?: string;
  /** When the base was made (kept across export/import). */
  createdAt: string;
  /** When it was registered in this home. */
  addedAt: string;
  diskBytes: number;
  memoryBytes: number;
  memoryPages: number;
  hostFacts: HostFacts;
  /** The spec as stored: file names relative to the base folder (disk.raw, kernel, initrd). */
  spec: VmSpec;
  /** The same spec with absolute paths into this registry, ready for the driver (the disk must stay read-only). */
  localSpec: VmSpec;
  paths: BasePaths;
  manifest: BaseManifest;
}

export function baseInfoFromRow(row: BaseRow, layout: HomeLayout): BaseInfo {
  let manifest: BaseManifest;
  try {
    const parsed = BaseManifestSchema.safeParse(JSON.parse(row.manifest));
    if (!parsed.success) throw new Error(describeIssues(parsed.error));
    manifest = parsed.data;
  } catch (e) {
    throw new RegistryError(
      'corrupt-base',
      `base ${row.id}: stored manifest is invalid (${(e as Error).message})`,
      {
        cause: e,
      },
    );
  }
  const dir = layout.baseDir(row.id);
  const paths: BasePaths = {
    dir,
    disk: join(dir, BASE_FILES.disk),
    memory: join(dir, BASE_FILES.memory),
    diskIndex: join(dir, BASE_FILES.diskIndex),
    memoryIndex: join(dir, BASE_FILES.memoryIndex),
    manifest: join(dir, BASE_FILES.manifest),
  };
  if (manifest.kernel) paths.kernel = join(dir, BASE_FILES.kernel);
  if (manifest.initrd) paths.initrd = join(dir, BASE_FILES.initrd);
  return {
    id: row.id,
    ...(manifest.label !== undefined ? { label: manifest.label } : {}),
    createdAt: manifest.createdAt,
    addedAt: row.added_at,
    diskBytes: manifest.disk.bytes,
    memoryBytes: manifest.memory.bytes,
    memoryPages: manifest.memory.pageCount,
    hostFacts: manifest.hostFacts,
    spec: manifest.spec,
    localSpec: localSpec(manifest.spec, dir),
    paths,
    manifest,
  };
}

/** Files every base folder must hold (reconciliation drops bases that lack one). */
export function requiredFiles(manifest: { kernel?: unknown; initrd?: unknown }): string[] {
  const files: string[] = [
    BASE_FILES.disk,
    BASE_FILES.memory,
    BASE_FILES.diskIndex,
    BASE_FILES.memoryIndex,
    BASE_FILES.manifest,
  ];
  if (manifest.kernel) files.push(BASE_FILES.kernel);
  if (manifest.initrd) files.push(BASE_FILES.initrd);
  return files;
}
