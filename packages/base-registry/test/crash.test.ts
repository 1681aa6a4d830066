import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBaseRegistry } from '../src/index.js';
import { registerSynthetic } from './helpers.js';

// kill -9 of an importing process at each step: the next open() must find either no base or the
// complete one, an empty tmp/, no orphan folder, and a database that passes integrity_check.

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
let root: string;
let zip: string;
let baseId: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cloudlet-crash-'));
  const source = await openBaseRegistry({ home: join(root, 'source') });
  // Random content, so decompressing and indexing take long enough to be interrupted mid-way.
  const { base } = await registerSynthetic(source, {
    disk: { bytes: 48 * MiB, random: true, dataFraction: 1 },
    memory: { ramPages: 4096, random: true },
  });
  baseId = base.id;
  zip = join(root, 'base.zip');
  await source.exportBase(base.id, zip);
  source.close();
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function startImport(home: string, pauseAt: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(here, 'crash-child.ts'), home, zip, pauseAt], {
    cwd: join(here, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Resolves with the first stdout line matching `pattern` (rejects if the child exits first). */
function waitForLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      if (pattern.test(line)) resolve(line);
    });
    child.on('exit', (code, signal) =>
      reject(new Error(`child exited (${code ?? signal}) before ${pattern}: ${stderr}`)),
    );
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return; // finished before the kill
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** Opens the crashed home and checks it is consistent; returns whether the base is registered. */
async function checkConsistent(home: string): Promise<{ registered: boolean; cleaned: number }> {
  const registry = await openBaseRegistry({ home });
  try {
    const { removedTemp, removedOrphans, droppedRows } = registry.reconciled;
    const ids = registry.list().map((b) => b.id);
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
    expect(await readdir(join(home, 'bases'))).toEqual(ids);
    expect(droppedRows).toEqual([]);
    for (const base of registry.list()) {
      for (const file of Object.values(base.paths)) expect(existsSync(file), file).toBe(true);
      const lookup = await registry.openLookup(base.id);
      expect(lookup.size).toBeGreaterThan(0);
    }
    const db = new Database(join(home, 'registry.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    // Whatever happened, the registry works: the import (again) ends with the complete base.
    const again = await registry.importBase(zip);
    expect(again.base.id).toBe(baseId);
    expect(again.alreadyPresent).toBe(ids.includes(baseId));
    return { registered: ids.includes(baseId), cleaned: removedTemp.length + removedOrphans.length };
  } finally {
    registry.close();
  }
}

describe('kill -9 during import leaves the registry consistent', () => {
  for (const stage of ['decompress', 'decompress-half', 'index-memory']) {
    it(`killed while at ${stage}: no base, staging removed by the next open`, async () => {
      const home = await mkdtemp(join(root, 'home-'));
      const child = startImport(home, stage);
      await waitForLine(child, new RegExp(`^stage ${stage}$`));
      await kill(child);
      expect((await readdir(join(home, 'tmp'))).length).toBeGreaterThan(0); // the crash left its staging
      const { registered, cleaned } = await checkConsistent(home);
      expect(registered).toBe(false);
      expect(cleaned).toBeGreaterThan(0);
    }, 60_000);
  }

  it('killed right after the rename to bases/<id>, before the row commits: the folder is removed', async () => {
    const home = await mkdtemp(join(root, 'home-'));
    const child = startImport(home, 'after-rename');
    const line = await waitForLine(child, /^renamed /);
    expect(line).toBe(`renamed ${join(home, 'bases', baseId)}`);
    await kill(child);
    expect(existsSync(join(home, 'bases', baseId))).toBe(true);
    const registry = await openBaseRegistry({ home });
    expect(registry.reconciled.removedOrphans).toEqual([baseId]);
    registry.close();
    const { registered } = await checkConsistent(home);
    expect(registered).toBe(false);
  }, 60_000);

  it('killed at an unplanned moment shortly after the import starts: either no base or the complete one', async () => {
    const outcomes: boolean[] = [];
    for (const delayMs of [0, 100, 250, 500]) {
      const home = await mkdtemp(join(root, 'home-'));
      const child = startImport(home, 'none');
      await waitForLine(child, /^stage decompress$/);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      await kill(child);
      outcomes.push((await checkConsistent(home)).registered);
    }
    expect(outcomes).toHaveLength(4);
  }, 90_000);

  it('a concurrent open() does not delete the staging of a live import', async () => {
    const home = await mkdtemp(join(root, 'home-'));
    const child = startImport(home, 'index-memory');
    await waitForLine(child, /^stage index-memory$/);
    const staged = await readdir(join(home, 'tmp'));
    expect(staged.length).toBeGreaterThan(0);
    const other = await openBaseRegistry({ home });
    expect(other.reconciled.removedTemp).toEqual([]);
    expect(await readdir(join(home, 'tmp'))).toEqual(staged);
    other.close();
    await kill(child);
  }, 60_000);
});
