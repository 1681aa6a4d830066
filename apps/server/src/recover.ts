// What a server finds on start after a crash (kill -9, power loss): sessions still marked active whose owner
// is gone. Their QEMU (detached, so it outlived the server) is stopped, their folders removed.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ACTIVE_SESSION_STATES, type SessionStore } from '@cloudlet/base-registry';
import { removeStaleMounts } from '@cloudlet/core';

export interface RecoverDeps {
  readonly home: string;
  readonly store: SessionStore;
  /** qemu-driver's stopDetachedVm: kills the PID only while its command line names the run folder. */
  readonly stopDetachedVm: (vm: { pid: number; runDir: string }) => Promise<string>;
  readonly log: (message: string) => void;
  /** Default: signal 0 (EPERM counts as alive). */
  readonly isAlive?: (pid: number) => boolean;
}

export interface RecoverReport {
  /** Sessions of dead owners, cleaned (with how their QEMU went). */
  readonly sessions: { id: string; qemu?: string }[];
  /** Folders under sessions/ that no live session owns. */
  readonly removedFolders: string[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const PRUNE_AFTER_MS = 7 * 24 * 3600 * 1000;

export async function recoverSessions(deps: RecoverDeps): Promise<RecoverReport> {
  const isAlive = deps.isAlive ?? alive;
  const report: RecoverReport = { sessions: [], removedFolders: [] };
  // An early-start session's disk was served by the dead server: its mount answers ENOTCONN until unmounted.
  for (const mountpoint of await removeStaleMounts(join(deps.home, 'sessions')))
    deps.log(`unmounted ${mountpoint} (left by a server that ended)`);
  const live = new Set<string>();
  for (const row of deps.store.list(ACTIVE_SESSION_STATES)) {
    if (row.ownerPid !== process.pid && isAlive(row.ownerPid)) {
      live.add(row.dir); // another server on this home
      continue;
    }
    let qemu: string | undefined;
    if (row.qemuPid !== undefined && row.runDir !== undefined) {
      qemu = await deps
        .stopDetachedVm({ pid: row.qemuPid, runDir: row.runDir })
        .catch((error: unknown) => `not stopped: ${(error as Error).message}`);
    }
    await rm(row.dir, { recursive: true, force: true });
    deps.store.update(row.id, {
      state: 'cleaned',
      error: `its server (pid ${row.ownerPid}) ended while it was ${row.state}; cleaned up on restart`,
    });
    deps.log(
      `cleaned session ${row.id} left ${row.state} by pid ${row.ownerPid}${qemu === undefined ? '' : ` (QEMU ${row.qemuPid}: ${qemu})`}`,
    );
    report.sessions.push({ id: row.id, ...(qemu === undefined ? {} : { qemu }) });
  }
  const dir = join(deps.home, 'sessions');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    if (live.has(path)) continue;
    await rm(path, { recursive: true, force: true });
    report.removedFolders.push(path);
    deps.log(`removed ${path} (no live session)`);
  }
  deps.store.prune(new Date(Date.now() - PRUNE_AFTER_MS).toISOString());
  return report;
}
