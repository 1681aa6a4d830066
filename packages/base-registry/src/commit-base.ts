import { existsSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryContext } from './context.js';
import { insertRow, rowById } from './database.js';
import { fsyncDirSync } from './fs-util.js';
import { type BaseManifest, serializeManifest } from './manifest.js';
import { tempName } from './temp-owner.js';

/**
 * Makes a fully written, fsynced staged folder a registered base: rename to bases/<id> and insert
 * the row, both inside one IMMEDIATE transaction. Holding the write lock across the rename is what
 * keeps a concurrent open() from ever seeing bases/<id> without its row (it reconciles under the
 * same lock), and a crash before COMMIT rolls the row back, leaving a folder that the next open()
 * removes. Returns whether the id was already registered (then nothing was moved).
 */
export async function commitStagedBase(
  ctx: RegistryContext,
  stagedDir: string,
  manifest: BaseManifest,
): Promise<{ alreadyPresent: boolean }> {
  const target = ctx.layout.baseDir(manifest.id);
  const trash: string[] = [];
  const commit = ctx.db.transaction(() => {
    if (rowById(ctx.db, manifest.id)) return { alreadyPresent: true };
    if (existsSync(target)) {
      // Left by a process that crashed after its rename; its row never committed.
      const away = join(ctx.layout.tmp, tempName('trash'));
      renameSync(target, away);
      trash.push(away);
    }
    renameSync(stagedDir, target);
    try {
      fsyncDirSync(ctx.layout.bases);
      ctx.hooks.afterRename?.(target);
      insertRow(ctx.db, {
        id: manifest.id,
        label: manifest.label ?? null,
        created_at: manifest.createdAt,
        added_at: ctx.now().toISOString(),
        disk_bytes: manifest.disk.bytes,
        memory_bytes: manifest.memory.bytes,
        qemu_version: manifest.hostFacts.qemuVersion,
        machine_type: manifest.hostFacts.machineType,
        manifest: serializeManifest(manifest),
      });
    } catch (e) {
      renameSync(target, stagedDir);
      throw e;
    }
    return { alreadyPresent: false };
  });
  try {
    return commit.immediate();
  } finally {
    await Promise.all(trash.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}
