import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { openBaseRegistry, openSessionStore } from '../src/index.js';

describe('sessions table', () => {
  it('migrates a version-1 database and keeps its bases table', async () => {
    const home = testTempDir('sessions-');
    const db = new Database(join(home, 'registry.db'));
    db.exec(`CREATE TABLE bases (id TEXT PRIMARY KEY, label TEXT, created_at TEXT NOT NULL, added_at TEXT NOT NULL,
      disk_bytes INTEGER NOT NULL, memory_bytes INTEGER NOT NULL, qemu_version TEXT NOT NULL,
      machine_type TEXT NOT NULL, manifest TEXT NOT NULL) STRICT`);
    db.pragma('user_version = 1');
    db.close();
    const store = openSessionStore({ home });
    expect(store.list()).toEqual([]);
    store.close();
    const registry = await openBaseRegistry({ home });
    expect(registry.list()).toEqual([]);
    registry.close();
  });

  it('records, updates, lists by state and prunes final rows', async () => {
    const home = join(testTempDir('sessions-'), 'new-home');
    let clock = new Date('2026-01-01T00:00:00Z');
    const store = openSessionStore({ home, now: () => clock });
    const registry = await openBaseRegistry({ home }); // both on one database at once
    store.insert({
      id: 's1',
      state: 'creating',
      createdAt: clock.toISOString(),
      ownerPid: 123,
      source: 'upload',
      dir: '/x/s1',
    });
    store.insert({
      id: 's2',
      state: 'creating',
      createdAt: '2026-01-01T00:00:01Z',
      ownerPid: 123,
      source: 'http://h/o.zip',
      dir: '/x/s2',
    });
    clock = new Date('2026-01-01T00:01:00Z');
    store.update('s1', { state: 'ready', qemuPid: 77, runDir: '/tmp/cloudlet-vm-1', baseId: 'ab' });
    expect(store.get('s1')).toMatchObject({
      state: 'ready',
      qemuPid: 77,
      runDir: '/tmp/cloudlet-vm-1',
      baseId: 'ab',
      updatedAt: '2026-01-01T00:01:00.000Z',
    });
    expect(store.get('nope')).toBeUndefined();
    store.update('s2', { state: 'failed', error: 'boom' });
    expect(store.list(['creating', 'ready']).map((r) => r.id)).toEqual(['s1']);
    expect(store.list().map((r) => r.id)).toEqual(['s2', 's1']);
    expect(store.prune('2026-01-01T00:02:00Z')).toBe(1);
    expect(store.list().map((r) => r.id)).toEqual(['s1']);
    store.close();
    registry.close();
  });
});
