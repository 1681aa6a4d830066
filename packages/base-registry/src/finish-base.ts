import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChunkIndex, writeChunkIndex } from '@cloudlet/delta';
import type { VmSpec } from '@cloudlet/qemu-driver';
import { analyzeBase, type BaseAnalysis } from './analyze-base.js';
import { computeBaseId } from './base-id.js';
import { requiredFiles } from './base-info.js';
import { commitStagedBase } from './commit-base.js';
import type { RegistryContext } from './context.js';
import { rowById } from './database.js';
import { RegistryError } from './errors.js';
import { fsyncDirSync, fsyncFile } from './fs-util.js';
import { BASE_FILES } from './layout.js';
import { BASE_FORMAT_VERSION, type BaseManifest, serializeManifest, type VmBackendName } from './manifest.js';
import type { ProgressListener } from './progress.js';
import { checkRawDisk } from './raw-disk-check.js';

export interface FinishInput {
  /** Portable spec (see portableSpec). */
  spec: VmSpec;
  qemuVersion: string;
  cpuModel: string;
  backend?: VmBackendName | undefined;
  label?: string | undefined;
  createdAt: string;
  /** Import: the manifest the package declares; every digest and the id must match it. */
  expected?: BaseManifest | undefined;
  /** Import: the disk index, built while the disk was decompressed (saves reading it back). */
  diskIndex?: ChunkIndex | undefined;
}

export interface FinishOptions {
  onProgress?: ProgressListener | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The one path by which a base enters the registry (register and import): validate and read the
 * staged files, build both indexes, compute the id, write indexes and base.json, fsync, commit.
 * The caller owns stagedDir and removes it if this throws or reports alreadyPresent.
 */
export async function finishBase(
  ctx: RegistryContext,
  stagedDir: string,
  input: FinishInput,
  options: FinishOptions = {},
): Promise<{ manifest: BaseManifest; alreadyPresent: boolean }> {
  await checkRawDisk(join(stagedDir, BASE_FILES.disk));
  const analysis = await analyzeBase(stagedDir, {
    diskIndex: input.diskIndex,
    withKernel: input.spec.kernel !== undefined,
    withInitrd: input.spec.initrd !== undefined,
    diskIndexWorkers: ctx.diskIndexWorkers,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  const manifest = manifestOf(analysis, input);
  if (input.expected) checkAgainstExpected(manifest, input.expected);
  options.signal?.throwIfAborted();
  if (rowById(ctx.db, manifest.id)) return { manifest, alreadyPresent: true };

  await writeChunkIndex(join(stagedDir, BASE_FILES.diskIndex), analysis.diskIndex);
  await writeChunkIndex(join(stagedDir, BASE_FILES.memoryIndex), analysis.memoryIndex);
  await writeFile(join(stagedDir, BASE_FILES.manifest), serializeManifest(manifest));
  await Promise.all(requiredFiles(manifest).map((f) => fsyncFile(join(stagedDir, f))));
  fsyncDirSync(stagedDir);
  options.signal?.throwIfAborted();

  const { alreadyPresent } = await commitStagedBase(ctx, stagedDir, manifest);
  return { manifest, alreadyPresent };
}

function manifestOf(analysis: BaseAnalysis, input: FinishInput): BaseManifest {
  const { digests, prologue } = analysis;
  return {
    formatVersion: BASE_FORMAT_VERSION,
    id: computeBaseId(digests, input.spec),
    ...(input.label !== undefined ? { label: input.label } : {}),
    createdAt: input.createdAt,
    spec: input.spec,
    hostFacts: {
      qemuVersion: input.qemuVersion,
      machineType: prologue.machineType,
      cpuModel: input.cpuModel,
      ...(input.backend === undefined ? {} : { backend: input.backend }),
    },
    disk: {
      bytes: digests.diskBytes,
      chunkCount: analysis.diskIndex.count,
      indexSha256: digests.diskIndexSha256,
    },
    memory: {
      bytes: digests.memoryBytes,
      sha256: digests.memorySha256,
      pageCount: analysis.memoryIndex.count,
      blocks: prologue.blocks.map((b) => ({ name: b.name, bytes: b.length })),
    },
    ...(digests.kernel ? { kernel: digests.kernel } : {}),
    ...(digests.initrd ? { initrd: digests.initrd } : {}),
  };
}

/** Import's verification: what the files hold against what base.json claims, the id last. */
function checkAgainstExpected(actual: BaseManifest, expected: BaseManifest): void {
  const mismatch = (what: string, got: unknown, want: unknown) =>
    new RegistryError(
      'hash-mismatch',
      `hash mismatch: ${what} is ${String(got)}, base.json says ${String(want)}`,
    );
  const pairs: [string, unknown, unknown][] = [
    ['disk.raw size', actual.disk.bytes, expected.disk.bytes],
    ['disk.raw chunk index sha256', actual.disk.indexSha256, expected.disk.indexSha256],
    ['memory.snap size', actual.memory.bytes, expected.memory.bytes],
    ['memory.snap sha256', actual.memory.sha256, expected.memory.sha256],
    ['kernel sha256', actual.kernel?.sha256, expected.kernel?.sha256],
    ['initrd sha256', actual.initrd?.sha256, expected.initrd?.sha256],
    ['the memory snapshot machine type', actual.hostFacts.machineType, expected.hostFacts.machineType],
    ['the RAM block table', JSON.stringify(actual.memory.blocks), JSON.stringify(expected.memory.blocks)],
    ['the base id', actual.id, expected.id],
  ];
  for (const [what, got, want] of pairs) if (got !== want) throw mismatch(what, got, want);
}
