import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BaseInfo } from '@cloudlet/base-registry';
import {
  createDiskOverlay,
  createQemuDriver,
  type PortForwardInput,
  parseVmSpec,
  type QemuDriver,
  type RunningVm,
  type VmSpec,
} from '@cloudlet/qemu-driver';

export interface ResumeBaseOptions {
  /** Folder for the copy-on-write disk (default: a new temp folder, removed by `dispose`). */
  readonly workDir?: string;
  /** Forwards for this run, replacing the base's own (host ports may differ from the base's). */
  readonly portForwards?: readonly PortForwardInput[];
  /** Whether guest TRIM frees clusters of the copy-on-write disk (default 'unmap': trimmed blocks vanish). */
  readonly discard?: 'unmap' | 'ignore';
  readonly driver?: QemuDriver;
}

export interface ResumedBase {
  readonly vm: RunningVm;
  /** The qcow2 copy-on-write disk the VM writes to; the base's disk is only read. */
  readonly disk: string;
  /** Kills the VM and removes the work folder if this call created it. */
  dispose(): Promise<void>;
}

export interface SpecOnDiskOptions {
  readonly portForwards?: readonly PortForwardInput[] | undefined;
  readonly discard?: 'unmap' | 'ignore' | undefined;
  /** The disk's format (default qcow2; an early-start disk is a raw image on cloudletfs). */
  readonly format?: 'qcow2' | 'raw' | undefined;
}

/**
 * The base's spec with its disk replaced by the qcow2 `disk` and, if given, its forwards; parsed, so the
 * forwards get their defaults. VNC (a VGA device) is kept as hardware and shown on a socket.
 */
export function specOnDisk(base: BaseInfo, disk: string, options: SpecOnDiskOptions): VmSpec {
  const { portForwards } = options;
  const nics = base.localSpec.nics.map((nic, i) =>
    i === 0 && portForwards !== undefined ? { ...nic, portForwards } : nic,
  );
  return parseVmSpec({
    ...base.localSpec,
    disks: base.localSpec.disks.map((d) => ({
      ...d,
      file: disk,
      format: options.format ?? 'qcow2',
      readonly: false,
      discard: options.discard ?? 'unmap',
    })),
    nics,
    display: base.localSpec.display.type === 'none' ? { type: 'none' } : { type: 'vnc-unix' },
  });
}

/**
 * Resumes a base VM where its snapshot left it, on a qcow2 disk backed by the base's raw disk (4 KiB
 * clusters, so later disk diffs follow 4 KiB chunks). The base's files are never written.
 */
export async function resumeBase(base: BaseInfo, options: ResumeBaseOptions = {}): Promise<ResumedBase> {
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'cloudlet-resume-')));
  const ownsWorkDir = options.workDir === undefined;
  const removeWorkDir = () =>
    ownsWorkDir ? rm(workDir, { recursive: true, force: true }) : Promise.resolve();
  const disk = join(workDir, 'disk.qcow2');
  try {
    await createDiskOverlay({
      file: disk,
      backingFile: base.paths.disk,
      backingFormat: 'raw',
      clusterSize: 4096,
    });
    const driver = options.driver ?? createQemuDriver();
    const vm = await driver.restore(specOnDisk(base, disk, options), createReadStream(base.paths.memory));
    return {
      vm,
      disk,
      async dispose() {
        await vm.kill();
        await removeWorkDir();
      },
    };
  } catch (error) {
    await removeWorkDir();
    throw error;
  }
}
