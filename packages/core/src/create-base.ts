import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import {
  type BaseRegistry,
  checkRawDisk,
  type RegisterResult,
  type RegistryProgress,
} from '@cloudlet/base-registry';
import { createQemuDriver, type QemuDriver, type RunningVm } from '@cloudlet/qemu-driver';
import { type BaseHardware, baseSpec } from './base-spec.js';
import { copySparse } from './sparse-copy.js';

export type CreateBaseStage = 'copy-disk' | 'boot' | 'prepare' | 'snapshot' | RegistryProgress['stage'];

export interface CreateBaseProgress {
  readonly stage: CreateBaseStage;
  readonly bytesDone?: number;
  readonly totalBytes?: number;
  /** For 'boot' and 'prepare': the VM, so a caller can show its endpoints (VNC socket, serial log). */
  readonly vm?: RunningVm;
}

export interface CreateBaseOptions extends BaseHardware {
  readonly registry: BaseRegistry;
  /** The user's raw disk image. It is copied; the file itself is never written. */
  readonly disk: string;
  /**
   * Brings the booted VM to the state the base should have (run a script, wait for the user, ...).
   * The snapshot is taken the moment it resolves.
   */
  readonly prepare: (vm: RunningVm) => Promise<void>;
  readonly label?: string;
  readonly onProgress?: (progress: CreateBaseProgress) => void;
  readonly driver?: QemuDriver;
}

/** Streams the VM's memory snapshot into a file; the disk is consistent once this resolves. */
async function snapshotInto(vm: RunningVm, file: string): Promise<void> {
  const snapshot = await vm.snapshot();
  await Promise.all([
    pipeline(snapshot.stream, createWriteStream(file, { flags: 'wx' })),
    snapshot.completed,
  ]);
}

/**
 * `cloudlet base`: copies the disk into a registry staging folder, boots it there, lets `prepare` customize
 * it, snapshots memory and disk at one moment (the VM is stopped, then QEMU is killed, so the staged disk is
 * exactly the disk state of the snapshot), and registers the result. Any failure discards the staging.
 */
export async function createBase(options: CreateBaseOptions): Promise<RegisterResult> {
  const { registry, onProgress } = options;
  const driver = options.driver ?? createQemuDriver();
  await checkRawDisk(options.disk, options.disk); // before copying or booting anything
  const staging = await registry.stage();
  try {
    await copySparse(options.disk, staging.diskPath, (p) => onProgress?.({ stage: 'copy-disk', ...p }));
    const spec = baseSpec(staging.diskPath, options);
    const vm = await driver.launch(spec);
    let version: string;
    try {
      onProgress?.({ stage: 'boot', vm });
      onProgress?.({ stage: 'prepare', vm });
      await options.prepare(vm);
      onProgress?.({ stage: 'snapshot' });
      version = vm.qemuVersion;
      await snapshotInto(vm, staging.memoryPath);
    } finally {
      await vm.kill();
    }
    return await registry.register(staging, {
      spec,
      hostFacts: { qemuVersion: version, cpuModel: vm.spec.cpu, backend: driver.kind ?? 'qemu' },
      ...(options.label === undefined ? {} : { label: options.label }),
      ...(onProgress === undefined ? {} : { onProgress }),
    });
  } catch (error) {
    await staging.discard();
    throw error;
  }
}
