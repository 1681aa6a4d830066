import { z } from 'zod';

// PCI slot plan for unpinned devices. RAM block names (e.g. "0000:00:03.0/virtio-net-pci.rom") and device
// section names in the migration stream embed the PCI address, so the address of every device must be the
// same at snapshot and restore time. The parsed spec always carries explicit slots; store the parsed spec.
export const VGA_PCI_SLOT = 0x02;
const FIRST_NIC_SLOT = 0x03;
const FIRST_DISK_SLOT = 0x08;
// Slot 0 is the host bridge on both machine types, slot 1 the PIIX3 on `pc`, 0x1f the ICH9 LPC on `q35`.
const pciSlot = z.number().int().min(0x02).max(0x1e);

const ipv4 = z.string().regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/, 'expected an IPv4 address');
const port = z.number().int().min(1).max(65535);
// A file path ends up inside QEMU's comma-separated option syntax; commas are escaped in argv, but
// control characters would only ever be a mistake.
const filePath = z
  .string()
  .min(1)
  .refine(
    (path) => ![...path].some((char) => char.charCodeAt(0) < 0x20),
    'must not contain control characters',
  );

export const PortForwardSchema = z.object({
  proto: z.enum(['tcp', 'udp']).default('tcp'),
  hostAddress: ipv4.default('127.0.0.1'),
  /** 0 = pick a free port at launch; the chosen port is reported by `RunningVm.portForwards`. */
  hostPort: z.number().int().min(0).max(65535).default(0),
  guestAddress: ipv4.optional(),
  guestPort: port,
});

export const DiskSpecSchema = z.object({
  file: filePath,
  format: z.enum(['raw', 'qcow2']),
  cache: z.enum(['writeback', 'writethrough', 'none', 'directsync', 'unsafe']).default('writeback'),
  /** `unmap` lets guest TRIM free qcow2 clusters, which keeps disk overlays small. */
  discard: z.enum(['unmap', 'ignore']).default('unmap'),
  readonly: z.boolean().default(false),
  pciSlot: pciSlot.optional(),
});

const mac = z
  .string()
  .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'expected a MAC address like 52:54:00:12:34:56');

export const NicSpecSchema = z.object({
  /** Only user-mode networking (slirp) for now; it needs no privileges and survives restore. */
  type: z.literal('user').default('user'),
  mac: mac.optional(),
  pciSlot: pciSlot.optional(),
  portForwards: z.array(PortForwardSchema).default([]),
});

export const DisplaySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }),
  /** VNC on a unix socket in the run folder (`RunningVm.paths.vncSocket`). */
  z.object({ type: z.literal('vnc-unix') }),
  z.object({
    type: z.literal('vnc'),
    host: ipv4.default('127.0.0.1'),
    display: z.number().int().min(0).max(99),
  }),
]);

// Options this package owns (sockets, process model) or that QEMU 7.2 no longer knows.
const forbiddenExtraArgs: Record<string, string> = {
  '-redir': 'QEMU 7.2 removed -redir; convert it with extractLegacyRedirs()',
  '-daemonize': 'the driver must stay the parent of QEMU',
  '-incoming': 'use driver.restore()',
  '-qmp': 'the driver owns the QMP socket',
  '-serial': 'the driver owns the serial console',
};

const SpecObject = z.object({
  /** Shown in `ps` as `-name`; not part of the guest hardware. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .optional(),
  machine: z
    .string()
    .regex(/^[a-z0-9._-]+$/)
    .default('pc'),
  cpu: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .refine((model) => model !== 'host' && model !== 'max', {
      message: "'host' and 'max' tie a snapshot to this host's CPU; use a named model such as qemu64",
    })
    .default('qemu64'),
  vcpus: z.number().int().min(1).max(64).default(1),
  memoryMiB: z
    .number()
    .int()
    .min(16)
    .max(1024 * 1024),
  accel: z.enum(['tcg', 'kvm']).default('tcg'),
  disks: z.array(DiskSpecSchema).default([]),
  nics: z.array(NicSpecSchema).default([]),
  kernel: filePath.optional(),
  initrd: filePath.optional(),
  append: z.string().optional(),
  display: DisplaySchema.default({ type: 'none' }),
  extraArgs: z.array(z.string()).default([]),
});

type SpecObjectOutput = z.output<typeof SpecObject>;

function checkBootFiles(spec: SpecObjectOutput, ctx: z.RefinementCtx): void {
  for (const field of ['initrd', 'append'] as const) {
    if (spec[field] !== undefined && spec.kernel === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message: `${field} needs kernel (QEMU refuses it otherwise)`,
      });
    }
  }
}

function checkExtraArgs(spec: SpecObjectOutput, ctx: z.RefinementCtx): void {
  spec.extraArgs.forEach((arg, index) => {
    const why = forbiddenExtraArgs[arg];
    if (why !== undefined)
      ctx.addIssue({ code: 'custom', path: ['extraArgs', index], message: `${arg}: ${why}` });
  });
}

function pinDevices(spec: SpecObjectOutput) {
  return {
    ...spec,
    disks: spec.disks.map((disk, i) => ({ ...disk, pciSlot: disk.pciSlot ?? FIRST_DISK_SLOT + i })),
    nics: spec.nics.map((nic, i) => ({
      ...nic,
      pciSlot: nic.pciSlot ?? FIRST_NIC_SLOT + i,
      mac: (nic.mac ?? defaultMac(i)).toLowerCase(),
    })),
  };
}

function defaultMac(index: number): string {
  return `52:54:00:12:34:${(0x56 + index).toString(16).padStart(2, '0')}`;
}

type PinnedSpec = ReturnType<typeof pinDevices>;

function checkUniqueSlots(spec: PinnedSpec, ctx: z.RefinementCtx): void {
  const owners = new Map<number, string>();
  if (spec.display.type !== 'none') owners.set(VGA_PCI_SLOT, 'display (VGA)');
  const claim = (slot: number, path: (string | number)[]) => {
    const owner = owners.get(slot);
    if (owner !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path,
        message: `PCI slot 0x${slot.toString(16)} is already used by ${owner}`,
      });
    }
    owners.set(slot, path.join('.'));
  };
  for (const [i, nic] of spec.nics.entries()) claim(nic.pciSlot, ['nics', i, 'pciSlot']);
  for (const [i, disk] of spec.disks.entries()) claim(disk.pciSlot, ['disks', i, 'pciSlot']);
}

function checkUniqueMacs(spec: PinnedSpec, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  spec.nics.forEach((nic, i) => {
    if (seen.has(nic.mac))
      ctx.addIssue({ code: 'custom', path: ['nics', i, 'mac'], message: 'duplicate MAC' });
    seen.add(nic.mac);
  });
}

function checkHostPorts(spec: PinnedSpec, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  for (const [n, nic] of spec.nics.entries()) {
    for (const [f, fwd] of nic.portForwards.entries()) {
      if (fwd.hostPort === 0) continue;
      const key = `${fwd.proto}:${fwd.hostAddress}:${fwd.hostPort}`;
      if (seen.has(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['nics', n, 'portForwards', f, 'hostPort'],
          message: `${key} used twice`,
        });
      }
      seen.add(key);
    }
  }
}

/**
 * The hardware and boot description of a VM. Everything that must match between a memory snapshot and its
 * restore (machine, memoryMiB, device set and PCI slots, display adapter) lives here, so store the *parsed*
 * spec with the snapshot: parsing pins PCI slots and MACs.
 */
export const VmSpec = SpecObject.superRefine(checkBootFiles)
  .superRefine(checkExtraArgs)
  .transform(pinDevices)
  .superRefine(checkUniqueSlots)
  .superRefine(checkUniqueMacs)
  .superRefine(checkHostPorts);

/** A parsed spec: defaults applied, PCI slots and MACs pinned. */
export type VmSpec = z.output<typeof VmSpec>;
/** What callers may write: most fields have defaults. */
export type VmSpecInput = z.input<typeof VmSpec>;
export type PortForward = z.output<typeof PortForwardSchema>;
export type PortForwardInput = z.input<typeof PortForwardSchema>;
export type DiskSpec = VmSpec['disks'][number];
export type NicSpec = VmSpec['nics'][number];
export type DisplaySpec = z.output<typeof DisplaySchema>;

/** Invalid VM spec. `issues` name each bad field by its path, e.g. `nics.0.portForwards.1.guestPort`. */
export class VmSpecError extends Error {
  override readonly name = 'VmSpecError';
  constructor(readonly issues: readonly { path: string; message: string }[]) {
    super(
      `invalid VM spec: ${issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`).join('; ')}`,
    );
  }
}

export function parseVmSpec(input: unknown): VmSpec {
  const result = VmSpec.safeParse(input);
  if (result.success) return result.data;
  throw new VmSpecError(
    result.error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message })),
  );
}
