import { existsSync, readdirSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { requiredFiles } from './base-info.js';
import type { RegistryContext } from './context.js';
import { allRows, deleteRow } from './database.js';
import { BASE_ID_PATTERN } from './layout.js';
import { tempName, tempOwnerAlive } from './temp-owner.js';

/** What open() cleaned up after crashed or killed processes. */
export interface ReconcileReport {
  /** tmp/ entries whose owner process is gone (staging, downloads, half-deleted bases). */
  removedTemp: string[];
  /** bases/<id> folders without a row (a crash between rename and commit). */
  removedOrphans: string[];
  /** Rows whose folder is gone or lacks a file (deleted by hand); their folders are removed too. */
  droppedRows: string[];
}

/**
 * Brings home/ back to "every row has its complete folder and nothing else is there". The bases/
 * part runs under the write lock, which every commit and remove also holds while it renames, so a
 * live process's half-done step is never mistaken for crash debris; tmp/ entries of live owners are
 * left alone. Folders are renamed into tmp/ under the lock and deleted after it is released.
 */
export async function reconcileHome(ctx: RegistryContext): Promise<ReconcileReport> {
  const report: ReconcileReport = { removedTemp: [], removedOrphans: [], droppedRows: [] };
  const deadTemp = readdirSync(ctx.layout.tmp).filter((name) => !tempOwnerAlive(name));
  const trash: string[] = [];
  const moveToTrash = (dir: string) => {
    const away = join(ctx.layout.tmp, tempName('trash'));
    renameSync(dir, away);
    trash.push(away);
  };
  ctx.db
    .transaction(() => {
      const rows = new Map(allRows(ctx.db).map((row) => [row.id, row]));
      for (const [id, row] of rows) {
        const dir = ctx.layout.baseDir(id);
        let needed: string[];
        try {
          needed = requiredFiles(JSON.parse(row.manifest) as { kernel?: unknown; initrd?: unknown });
        } catch {
          needed = requiredFiles({});
        }
        if (needed.every((file) => existsSync(join(dir, file)))) continue;
        deleteRow(ctx.db, id);
        if (existsSync(dir)) moveToTrash(dir);
        report.droppedRows.push(id);
        rows.delete(id);
      }
      for (const name of readdirSync(ctx.layout.bases)) {
        // Only names the registry makes; anything else in bases/ is someone's file, not debris.
        if (!BASE_ID_PATTERN.test(name) || rows.has(name)) continue;
        moveToTrash(ctx.layout.baseDir(name));
        report.removedOrphans.push(name);
      }
    })
    .immediate();
  await Promise.all(
    deadTemp.map(async (name) => {
      await rm(join(ctx.layout.tmp, name), { recursive: true, force: true });
      report.removedTemp.push(name);
    }),
  );
  await Promise.all(trash.map((dir) => rm(dir, { recursive: true, force: true })));
  for (const id of report.droppedRows) ctx.log(`dropped base ${id}: its folder is gone or incomplete`);
  for (const id of report.removedOrphans) ctx.log(`removed bases/${id}: a registration that never committed`);
  for (const name of report.removedTemp) ctx.log(`removed tmp/${name}: left by a process that is gone`);
  return report;
}
