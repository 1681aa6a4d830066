import { VmSpec } from '@cloudlet/qemu-driver';
import { z } from 'zod';
import { BASE_FILES } from './layout.js';
import { BASE_LIMITS } from './limits.js';

/** Version of base.json (and of the export package around it) this code writes and reads. */
export const BASE_FORMAT_VERSION = 1;

const CHUNK = 4096;
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const byteCount = (max: number) => z.number().int().min(0).max(max);

export const HostFactsSchema = z.strictObject({
  /** `qemu-system-x86_64 --version`, e.g. "7.2.22". */
  qemuVersion: z.string().min(1).max(200),
  /** The resolved machine type from the memory snapshot, e.g. "pc-i440fx-7.2" (never an alias like "pc"). */
  machineType: z.string().min(1).max(256),
  /** The CPU model the snapshot was taken with (the spec's `cpu`). */
  cpuModel: z.string().min(1).max(200),
  /**
   * Which VmBackend ran the VM the snapshot was taken from. Bases made before backends existed have none:
   * they were made by the direct-QEMU driver: read it with `baseBackend`. Optional in the type as well, so
   * host facts written before it stay valid as they are.
   */
  backend: z.enum(['qemu', 'libvirt']).optional(),
});
export type VmBackendName = 'qemu' | 'libvirt';

/** The backend that made a base: what its manifest says, 'qemu' for bases older than the field. */
export function baseBackend(hostFacts: { readonly backend?: VmBackendName | undefined }): VmBackendName {
  return hostFacts.backend ?? 'qemu';
}
export type HostFacts = z.output<typeof HostFactsSchema>;

const BootFileSchema = z.strictObject({
  bytes: byteCount(BASE_LIMITS.maxBootFileBytes),
  sha256: sha256Hex,
});

export const BaseManifestSchema = z
  .strictObject({
    formatVersion: z.literal(BASE_FORMAT_VERSION),
    id: sha256Hex,
    /** Free text for people (e.g. the disk image the base was made from); not part of the id. */
    label: z.string().max(200).optional(),
    createdAt: z.iso.datetime(),
    spec: VmSpec,
    hostFacts: HostFactsSchema,
    disk: z.strictObject({
      bytes: byteCount(BASE_LIMITS.maxDiskBytes),
      chunkCount: z.number().int().min(1),
      /** sha256 of the disk chunk index's hash array (= the digest in disk.idx's header). */
      indexSha256: sha256Hex,
    }),
    memory: z.strictObject({
      bytes: byteCount(BASE_LIMITS.maxMemorySnapshotBytes),
      /** sha256 of memory.snap, the whole file. */
      sha256: sha256Hex,
      /** Pages of the flat page index (sum of block lengths / 4096). */
      pageCount: z.number().int().min(1),
      /** The stream's RAM block table, in stream order: the flat page index runs through it. */
      blocks: z
        .array(
          z.strictObject({ name: z.string().min(1).max(255), bytes: byteCount(BASE_LIMITS.maxRamBytes) }),
        )
        .min(1)
        .max(1024),
    }),
    kernel: BootFileSchema.optional(),
    initrd: BootFileSchema.optional(),
  })
  .superRefine((m, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    if (m.disk.bytes === 0 || m.disk.bytes % 512 !== 0)
      issue(['disk', 'bytes'], 'must be a positive multiple of 512');
    if (m.disk.chunkCount !== Math.ceil(m.disk.bytes / CHUNK))
      issue(['disk', 'chunkCount'], 'does not match bytes');
    let ram = 0;
    m.memory.blocks.forEach((b, i) => {
      if (b.bytes === 0 || b.bytes % CHUNK !== 0)
        issue(['memory', 'blocks', i, 'bytes'], 'not a multiple of 4096');
      ram += b.bytes;
    });
    if (ram > BASE_LIMITS.maxRamBytes) issue(['memory', 'blocks'], `RAM ${ram} bytes exceeds the limit`);
    if (m.memory.pageCount !== ram / CHUNK) issue(['memory', 'pageCount'], 'does not match the block table');
    if (m.spec.disks.length !== 1 || m.spec.disks[0]?.file !== BASE_FILES.disk)
      issue(['spec', 'disks'], `must be exactly one disk named "${BASE_FILES.disk}"`);
    for (const name of ['kernel', 'initrd'] as const) {
      const named = m.spec[name];
      if (named !== undefined && named !== BASE_FILES[name])
        issue(['spec', name], `must be "${BASE_FILES[name]}"`);
      if ((named === undefined) !== (m[name] === undefined))
        issue([name], `present exactly when spec.${name} is set`);
    }
  });

/** base.json: everything about a base except its bulk files. */
export type BaseManifest = z.output<typeof BaseManifestSchema>;

/** One-line description of the first few schema problems, e.g. `disk.bytes: must be …`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/**
 * base.json bytes. Parsing first puts every object's keys in schema order, so the same base gives
 * the same file in every home, whatever order the caller built the object in.
 */
export function serializeManifest(manifest: BaseManifest): string {
  return `${JSON.stringify(BaseManifestSchema.parse(manifest), null, 2)}\n`;
}
