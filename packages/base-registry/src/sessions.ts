// The sessions table of registry.db: one row per synthesis session of a cloudlet server, so that a server
// restarted after a crash knows which QEMU processes and folders were its own.
import { mkdirSync } from 'node:fs';
import { openDatabase, type RegistryDatabase } from './database.js';
import { defaultHome, homeLayout } from './layout.js';

/** `creating`: overlay arriving or being applied; `ready`: the VM runs; the others are final. */
export type SessionState = 'creating' | 'ready' | 'closed' | 'failed' | 'cleaned';

export const ACTIVE_SESSION_STATES: readonly SessionState[] = ['creating', 'ready'];

export interface SessionRecord {
  readonly id: string;
  readonly state: SessionState;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** PID of the server process that owns the session. */
  readonly ownerPid: number;
  /** `upload` or the overlay URL. */
  readonly source: string;
  readonly baseId?: string;
  /** The session's folder (everything of it lives there). */
  readonly dir: string;
  /** The detached QEMU, once the VM runs. */
  readonly qemuPid?: number;
  readonly runDir?: string;
  /** JSON the server keeps with the row (endpoints, timings). */
  readonly details?: string;
  readonly error?: string;
}

export type SessionUpdate = Partial<
  Pick<SessionRecord, 'state' | 'baseId' | 'qemuPid' | 'runDir' | 'details' | 'error'>
>;

export interface SessionStore {
  insert(record: Omit<SessionRecord, 'updatedAt'>): void;
  update(id: string, change: SessionUpdate): void;
  get(id: string): SessionRecord | undefined;
  /** Every row (newest first), or only those in the given states. */
  list(states?: readonly SessionState[]): SessionRecord[];
  /** Deletes final rows last updated before `before` (ISO time); returns how many. */
  prune(before: string): number;
  close(): void;
}

interface SessionRow {
  id: string;
  state: SessionState;
  created_at: string;
  updated_at: string;
  owner_pid: number;
  source: string;
  base_id: string | null;
  dir: string;
  qemu_pid: number | null;
  run_dir: string | null;
  details: string | null;
  error: string | null;
}

function fromRow(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    state: row.state,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ownerPid: row.owner_pid,
    source: row.source,
    dir: row.dir,
    ...(row.base_id === null ? {} : { baseId: row.base_id }),
    ...(row.qemu_pid === null ? {} : { qemuPid: row.qemu_pid }),
    ...(row.run_dir === null ? {} : { runDir: row.run_dir }),
    ...(row.details === null ? {} : { details: row.details }),
    ...(row.error === null ? {} : { error: row.error }),
  };
}

const COLUMNS: Record<keyof SessionUpdate, string> = {
  state: 'state',
  baseId: 'base_id',
  qemuPid: 'qemu_pid',
  runDir: 'run_dir',
  details: 'details',
  error: 'error',
};

export function sessionStoreOn(db: RegistryDatabase, now: () => Date = () => new Date()): SessionStore {
  return {
    insert(record) {
      db.prepare(
        `INSERT INTO sessions (id, state, created_at, updated_at, owner_pid, source, base_id, dir, qemu_pid, run_dir, details, error)
         VALUES (@id, @state, @created_at, @created_at, @owner_pid, @source, @base_id, @dir, @qemu_pid, @run_dir, @details, @error)`,
      ).run({
        id: record.id,
        state: record.state,
        created_at: record.createdAt,
        owner_pid: record.ownerPid,
        source: record.source,
        base_id: record.baseId ?? null,
        dir: record.dir,
        qemu_pid: record.qemuPid ?? null,
        run_dir: record.runDir ?? null,
        details: record.details ?? null,
        error: record.error ?? null,
      });
    },
    update(id, change) {
      const keys = (Object.keys(change) as (keyof SessionUpdate)[]).filter((k) => change[k] !== undefined);
      const sets = keys.map((k) => `${COLUMNS[k]} = @${k}`);
      db.prepare(`UPDATE sessions SET ${[...sets, 'updated_at = @updatedAt'].join(', ')} WHERE id = @id`).run(
        {
          ...Object.fromEntries(keys.map((k) => [k, change[k]])),
          updatedAt: now().toISOString(),
          id,
        },
      );
    },
    get(id) {
      const row = db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
      return row === undefined ? undefined : fromRow(row);
    },
    list(states) {
      const rows =
        states === undefined
          ? db.prepare('SELECT * FROM sessions ORDER BY created_at DESC, id').all()
          : db
              .prepare(
                `SELECT * FROM sessions WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY created_at DESC, id`,
              )
              .all(...states);
      return (rows as SessionRow[]).map(fromRow);
    },
    prune(before) {
      return db
        .prepare(`DELETE FROM sessions WHERE state NOT IN ('creating', 'ready') AND updated_at < ?`)
        .run(before).changes;
    },
    close() {
      db.close();
    },
  };
}

/**
 * The sessions table of the registry at `home` (default `$CLOUDLET_HOME`, else `~/.cloudlet`) on a
 * connection of its own (registry.db is in WAL mode: it runs beside an open registry).
 */
export function openSessionStore(options: { home?: string; now?: () => Date } = {}): SessionStore {
  const layout = homeLayout(options.home ?? defaultHome());
  mkdirSync(layout.home, { recursive: true });
  return sessionStoreOn(openDatabase(layout.database), options.now);
}
