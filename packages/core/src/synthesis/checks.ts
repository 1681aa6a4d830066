import { statfs } from 'node:fs/promises';
import { type BaseInfo, BaseNotFoundError, type BaseRegistry } from '@cloudlet/base-registry';
import type { OverlayManifest } from '@cloudlet/overlay-format';
import { checkHostCompatibility, type QemuHost } from '@cloudlet/qemu-driver';
import { SynthesisError } from './errors.js';

const short = (id: string) => id.slice(0, 12);

function registeredList(registry: BaseRegistry): string {
  const bases = registry.list();
  if (bases.length === 0) return 'no base is registered here';
  const names = bases.map((b) => `${short(b.id)}${b.label === undefined ? '' : ` (${b.label})`}`);
  return `registered here: ${names.join(', ')}`;
}

/** The registered base the overlay was made against; `requested` (an id or prefix) must be that one. */
export function baseForOverlay(
  registry: BaseRegistry,
  manifest: OverlayManifest,
  requested: string | undefined,
): BaseInfo {
  const wanted = manifest.base.id;
  let base: BaseInfo;
  try {
    base = registry.get(requested ?? wanted);
  } catch (error) {
    if (!(error instanceof BaseNotFoundError)) throw error;
    const which =
      requested === undefined
        ? `the overlay's base ${short(wanted)}`
        : `base "${requested}" (the overlay is for ${short(wanted)})`;
    throw new SynthesisError('unknown-base', `${which} is not registered; ${registeredList(registry)}`, {
      cause: error,
    });
  }
  if (base.id !== wanted)
    throw new SynthesisError(
      'base-mismatch',
      `the overlay is for base ${short(wanted)}, not ${short(base.id)}${base.label === undefined ? '' : ` (${base.label})`}`,
    );
  return base;
}

/** The overlay's sizes and RAM layout must be the base's: its pages and chunks are addressed through them. */
export function checkOverlayFitsBase(manifest: OverlayManifest, base: BaseInfo): void {
  const sizes: [string, number, number][] = [
    ['base disk bytes', manifest.base.diskBytes, base.diskBytes],
    ['base memory pages', manifest.base.memoryPages, base.memoryPages],
    ['VM disk bytes', manifest.vm.diskBytes, base.diskBytes],
    ['VM memory pages', manifest.vm.memoryPages, base.memoryPages],
  ];
  for (const [what, declared, actual] of sizes)
    if (declared !== actual)
      throw new SynthesisError(
        'bad-size',
        `the overlay declares ${declared} ${what}, the base has ${actual}`,
      );
  const ours = manifest.vm.ramBlocks;
  const theirs = base.manifest.memory.blocks;
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    const a = ours[i];
    const b = theirs[i];
    if (a?.name !== b?.name || a?.bytes !== b?.bytes)
      throw new SynthesisError(
        'layout-mismatch',
        `the overlay's memory layout differs from the base's at RAM block ${i}: ` +
          `${a === undefined ? 'none' : `"${a.name}" ${a.bytes} B`} vs ${b === undefined ? 'none' : `"${b.name}" ${b.bytes} B`}`,
      );
  }
  const spec = manifest.vm.spec;
  const hw: [string, unknown, unknown][] = [
    ['machine type', spec.machine, base.spec.machine],
    ['CPU model', spec.cpu, base.spec.cpu],
    ['memory MiB', spec.memoryMiB, base.spec.memoryMiB],
    ['vCPUs', spec.vcpus, base.spec.vcpus],
  ];
  for (const [what, a, b] of hw)
    if (a !== b)
      throw new SynthesisError(
        'layout-mismatch',
        `the overlay's VM has ${what} ${String(a)}, its base ${String(b)}`,
      );
}

/** The base must load on this host's QEMU (version, machine type, CPU model as recorded). */
export function checkHost(base: BaseInfo, host: QemuHost): void {
  const problems = checkHostCompatibility(base.hostFacts, host);
  if (problems.length > 0)
    throw new SynthesisError(
      'host-incompatible',
      `base ${short(base.id)} cannot run here: ${problems.join('; ')}`,
    );
}

/** qcow2 data + metadata (an L2 table per 512 clusters, refcounts) + the decoded page store, with slack. */
export function bytesNeeded(manifest: OverlayManifest): number {
  const count = (space: 'memory' | 'disk') =>
    manifest.segments.filter((s) => s.space === space).reduce((n, s) => n + s.records, 0);
  const disk = count('disk') * 4096;
  return Math.ceil(disk * 1.01 + count('memory') * 4096 + 1024 * 1024);
}

/** Refuses up front when the work folder's file system cannot hold the rebuilt disk and pages. */
export async function checkFreeSpace(workDir: string, manifest: OverlayManifest): Promise<void> {
  const fs = await statfs(workDir);
  const free = fs.bavail * fs.bsize;
  const need = bytesNeeded(manifest);
  if (free < need)
    throw new SynthesisError(
      'no-space',
      `${workDir} has ${(free / 1e6).toFixed(1)} MB free, the rebuilt VM needs about ${(need / 1e6).toFixed(1)} MB`,
    );
}
