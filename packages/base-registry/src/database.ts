import Database from 'better-sqlite3';
import { RegistryError } from './errors.js';

export type RegistryDatabase = Database.Database;

/** A base's row. The manifest column holds base.json; the other columns serve listings and queries. */
export interface BaseRow {
  id: string;
  label: string | null;
  created_at: string;
  added_at: string;
  disk_bytes: number;
  memory_bytes: number;
  qemu_version: string;
  machine_type: string;
  manifest: string;
}

/** Schema migrations; `user_version` is how many have run. Append only, never edit a shipped one. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE bases (
     id           TEXT PRIMARY KEY CHECK (length(id) = 64),
     label        TEXT,
     created_at   TEXT NOT NULL,
     added_at     TEXT NOT NULL,
     disk_bytes   INTEGER NOT NULL,
     memory_bytes INTEGER NOT NULL,
     qemu_version TEXT NOT NULL,
     machine_type TEXT NOT NULL,
     manifest     TEXT NOT NULL
   ) STRICT`,
  // 2: synthesis sessions of cloudlet-server (what a restarted server needs to clean up after a crash).
  `CREATE TABLE sessions (
     id         TEXT PRIMARY KEY,
     state      TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     owner_pid  INTEGER NOT NULL,
     source     TEXT NOT NULL,
     base_id    TEXT,
     dir        TEXT NOT NULL,
     qemu_pid   INTEGER,
     run_dir    TEXT,
     details    TEXT,
     error      TEXT
   ) STRICT;
   CREATE INDEX sessions_by_state ON sessions (state)`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens registry.db: WAL (readers never block the one writer), synchronous=FULL (a returned commit
 * survives power loss), a generous busy timeout (another process may hold the write lock while it
 * commits a base), then runs pending migrations in one exclusive transaction.
 */
export function openDatabase(file: string): RegistryDatabase {
  const db = new Database(file, { timeout: 30_000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

function migrate(db: RegistryDatabase, file: string): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new RegistryError(
        'unsupported-schema',
        `${file} has schema version ${version}; this cloudlet knows up to ${SCHEMA_VERSION} (upgrade cloudlet)`,
      );
    }
    for (const sql of MIGRATIONS.slice(version)) db.exec(sql);
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).exclusive();
}

export function allRows(db: RegistryDatabase): BaseRow[] {
  return db.prepare('SELECT * FROM bases ORDER BY created_at, id').all() as BaseRow[];
}

export function rowsWithPrefix(db: RegistryDatabase, prefix: string): BaseRow[] {
  // Prefix is validated hex, so no LIKE wildcards can be in it.
  return db
    .prepare('SELECT * FROM bases WHERE id LIKE ? ORDER BY id LIMIT 10')
    .all(`${prefix}%`) as BaseRow[];
}

export function rowById(db: RegistryDatabase, id: string): BaseRow | undefined {
  return db.prepare('SELECT * FROM bases WHERE id = ?').get(id) as BaseRow | undefined;
}

export function insertRow(db: RegistryDatabase, row: BaseRow): void {
  db.prepare(
    `INSERT INTO bases (id, label, created_at, added_at, disk_bytes, memory_bytes, qemu_version, machine_type, manifest)
     VALUES (@id, @label, @created_at, @added_at, @disk_bytes, @memory_bytes, @qemu_version, @machine_type, @manifest)`,
  ).run(row);
}

export function deleteRow(db: RegistryDatabase, id: string): void {
  db.prepare('DELETE FROM bases WHERE id = ?').run(id);
}

export function allIds(db: RegistryDatabase): string[] {
  return (db.prepare('SELECT id FROM bases ORDER BY id').pluck().all() as string[]) ?? [];
}
