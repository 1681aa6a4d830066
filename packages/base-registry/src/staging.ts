import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryContext } from './context.js';
import { RegistryError } from './errors.js';
import { errnoCode } from './fs-util.js';
import { BASE_FILES } from './layout.js';
import { tempName } from './temp-owner.js';

/**
 * A private folder under the registry's tmp/ where a new base's files are put before register().
 * It becomes bases/<id> on success; it is removed on failure, on discard(), or — if the process dies —
 * by the next open() of the registry.
 */
export interface BaseStaging {
  readonly dir: string;
  /** Put the raw disk image here (copy it sparse-aware; it becomes the base's disk). */
  readonly diskPath: string;
  /** Put the memory snapshot (the QEMU migration stream as captured) here. */
  readonly memoryPath: string;
  /** Optional: the kernel, if the spec boots one; register() copies spec.kernel here if absent. */
  readonly kernelPath: string;
  /** Optional: the initrd, likewise. */
  readonly initrdPath: string;
  /** Removes the folder and everything in it. Safe to call more than once. */
  discard(): Promise<void>;
}

export interface StagingSet {
  create(): Promise<BaseStaging>;
  /** Marks a staging as used by register() (only once, only this registry's). */
  claim(staging: BaseStaging): void;
}

export function createStagingSet(ctx: RegistryContext): StagingSet {
  const open = new WeakSet<BaseStaging>();
  return {
    async create() {
      const dir = join(ctx.layout.tmp, tempName('stage'));
      await mkdir(dir);
      const staging: BaseStaging = {
        dir,
        diskPath: join(dir, BASE_FILES.disk),
        memoryPath: join(dir, BASE_FILES.memory),
        kernelPath: join(dir, BASE_FILES.kernel),
        initrdPath: join(dir, BASE_FILES.initrd),
        async discard() {
          open.delete(staging);
          await rm(dir, { recursive: true, force: true });
        },
      };
      open.add(staging);
      return staging;
    },
    claim(staging) {
      if (!open.has(staging)) {
        throw new RegistryError(
          'invalid-state',
          'this staging is not an open staging of this registry (already registered or discarded?)',
        );
      }
      open.delete(staging);
    },
  };
}

/**
 * Puts the boot files the spec names into the staging (unless the caller already did) and refuses
 * files the base would not list, so a base folder holds exactly what its manifest describes.
 */
export async function completeStaging(
  staging: BaseStaging,
  boot: { kernel?: string | undefined; initrd?: string | undefined },
): Promise<void> {
  const present = new Set(await readdir(staging.dir));
  const allowed = new Set<string>([BASE_FILES.disk, BASE_FILES.memory]);
  for (const which of ['kernel', 'initrd'] as const) {
    const source = boot[which];
    if (source === undefined) continue;
    allowed.add(BASE_FILES[which]);
    if (present.has(BASE_FILES[which])) continue;
    try {
      await copyFile(source, join(staging.dir, BASE_FILES[which]));
    } catch (e) {
      const why = errnoCode(e) === 'ENOENT' ? 'no such file' : (e as Error).message;
      throw new RegistryError('bad-boot-file', `${which} ${source}: ${why}`, { cause: e });
    }
  }
  for (const name of present) {
    if (!allowed.has(name))
      throw new RegistryError('invalid-state', `staging holds "${name}", which this base would not list`);
  }
}
