import { extractLegacyRedirs, type VmSpecInput } from '@cloudlet/qemu-driver';

export interface BaseHardware {
  /** Guest RAM in MiB (default 512). */
  readonly memoryMiB?: number;
  readonly cpus?: number;
  readonly kernel?: string;
  readonly initrd?: string;
  readonly append?: string;
  /** A VNC display (adds a VGA device: the same must be used wherever the base is resumed). */
  readonly vnc?: boolean;
  /** Extra QEMU arguments; the seed's `-redir tcp:HOST::GUEST` become port forwards. */
  readonly qemuArgs?: readonly string[];
}

/** The spec a new base boots with: its disk is the copy in the registry's staging folder. */
export function baseSpec(disk: string, hw: BaseHardware): VmSpecInput {
  const { args, portForwards } = extractLegacyRedirs(hw.qemuArgs ?? []);
  const spec: VmSpecInput = {
    memoryMiB: hw.memoryMiB ?? 512,
    vcpus: hw.cpus ?? 1,
    disks: [{ file: disk, format: 'raw' }],
    nics: [{ portForwards }],
    display: hw.vnc === true ? { type: 'vnc-unix' } : { type: 'none' },
    extraArgs: args,
  };
  if (hw.kernel !== undefined) spec.kernel = hw.kernel;
  if (hw.initrd !== undefined) spec.initrd = hw.initrd;
  if (hw.append !== undefined) spec.append = hw.append;
  return spec;
}
