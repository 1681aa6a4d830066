import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { hashChunk, isZeroHash } from '@cloudlet/delta';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { BaseNotFoundError, openBaseRegistry, RegistryError } from '../src/index.js';
import {
  DEFAULT_DISK,
  DEFAULT_MEMORY,
  defaultSpec,
  MACHINE_TYPE,
  patternPage,
  registerSynthetic,
  tree,
  writeDisk,
  writeMemory,
} from './helpers.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

async function freshRegistry(options: { now?: () => Date } = {}) {
  const home = join(testTempDir('cloudlet-registry-'), 'home');
  const registry = await openBaseRegistry({ home, ...options });
  return { home, registry };
}

async function registryError(promise: Promise<unknown> | (() => unknown)): Promise<RegistryError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    if (e instanceof RegistryError) return e;
    throw e;
  }
  throw new Error('expected a RegistryError');
}

describe('openBaseRegistry', () => {
  it('creates the home layout with a WAL database at the current schema', async () => {
    const { home, registry } = await freshRegistry();
    registry.close();
    expect((await readdir(home)).sort()).toEqual(expect.arrayContaining(['bases', 'registry.db', 'tmp']));
    const db = new Database(join(home, 'registry.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    db.close();
  });

  it('refuses a database written by a newer schema', async () => {
    const { home, registry } = await freshRegistry();
    registry.close();
    const db = new Database(join(home, 'registry.db'));
    db.pragma('user_version = 99');
    db.close();
    const error = await registryError(openBaseRegistry({ home }));
    expect(error.code).toBe('unsupported-schema');
    expect(error.message).toMatch(/schema version 99/);
  });

  it('uses $CLOUDLET_HOME when no home is given', async () => {
    const home = join(testTempDir('cloudlet-registry-'), 'from-env');
    const saved = process.env.CLOUDLET_HOME;
    process.env.CLOUDLET_HOME = home;
    try {
      const registry = await openBaseRegistry();
      expect(registry.home).toBe(home);
      registry.close();
    } finally {
      if (saved === undefined) delete process.env.CLOUDLET_HOME;
      else process.env.CLOUDLET_HOME = saved;
    }
  });

  it('is unusable after close', async () => {
    const { registry } = await freshRegistry();
    registry.close();
    expect((await registryError(() => registry.list())).code).toBe('invalid-state');
  });
});

describe('register, list, get, remove', () => {
  it('registers a base: folder layout, manifest, row, indexes', async () => {
    const now = new Date('2025-01-02T03:04:05.000Z');
    const { home, registry } = await freshRegistry({ now: () => now });
    const { base, alreadyPresent } = await registerSynthetic(registry, { label: 'tiny' });
    expect(alreadyPresent).toBe(false);
    expect(base.id).toMatch(/^[0-9a-f]{64}$/);
    expect(base.label).toBe('tiny');
    expect(base.createdAt).toBe(now.toISOString());
    expect(base.diskBytes).toBe(DEFAULT_DISK.bytes);
    expect(base.memoryPages).toBe(DEFAULT_MEMORY.ramPages + 4);
    expect(base.hostFacts).toEqual({
      qemuVersion: '7.2.22',
      machineType: MACHINE_TYPE,
      cpuModel: 'qemu64',
      backend: 'qemu',
    });
    expect(base.spec.disks[0]?.file).toBe('disk.raw');
    expect(base.localSpec.disks[0]?.file).toBe(join(home, 'bases', base.id, 'disk.raw'));
    expect(await tree(join(home, 'bases'))).toEqual(
      [
        `${base.id}/`,
        ...['base.json', 'disk.idx', 'disk.raw', 'memory.idx', 'memory.snap'].map((f) => `${base.id}/${f}`),
      ].sort(),
    );
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
    const manifest = JSON.parse(await readFile(base.paths.manifest, 'utf8'));
    expect(manifest).toEqual(base.manifest);
    expect(manifest.formatVersion).toBe(1);
    expect(manifest.memory.blocks).toEqual([
      { name: 'pc.ram', bytes: DEFAULT_MEMORY.ramPages * 4096 },
      { name: 'pc.bios', bytes: 4 * 4096 },
    ]);
    expect(registry.list().map((b) => b.id)).toEqual([base.id]);
    expect(registry.get(base.id).id).toBe(base.id);
    expect(registry.get(base.id.slice(0, 8).toUpperCase()).id).toBe(base.id);
  });

  it('indexes memory by flat page index (zero pages get the zero hash) and the disk by chunk', async () => {
    const { registry } = await freshRegistry();
    const { base } = await registerSynthetic(registry);
    const { disk, memory } = await registry.openIndexes(base.id);
    expect(memory.count).toBe(DEFAULT_MEMORY.ramPages + 4);
    expect(isZeroHash(memory.hashAt(0))).toBe(true); // every 3rd page is a zero record
    expect(hex(memory.hashAt(1))).toBe(hex(hashChunk(patternPage(7919 + 1))));
    expect(disk.count).toBe(DEFAULT_DISK.bytes / 4096);
    expect(hex(disk.hashAt(0))).toBe(hex(hashChunk(patternPage(1_000_003))));
    expect(isZeroHash(disk.hashAt(1))).toBe(true);
    const lookup = await registry.openLookup(base.id);
    expect(lookup.find(hashChunk(patternPage(7919 + 2)))).toEqual({ space: 'memory', index: 2 });
    expect(lookup.find(hashChunk(patternPage(1_000_003 + 2)))).toEqual({ space: 'disk', index: 2 });
  });

  it('gives pages the stream leaves out the zero hash', async () => {
    const { registry } = await freshRegistry();
    const staging = await registry.stage();
    await writeDisk(staging.diskPath, DEFAULT_DISK);
    await writeMemory(staging.memoryPath, { ramPages: 64, omit: (n) => n >= 32 });
    const { base } = await registry.register(staging, {
      spec: defaultSpec(),
      hostFacts: { qemuVersion: '7.2' },
    });
    const { memory } = await registry.openIndexes(base.id);
    expect(isZeroHash(memory.hashAt(40))).toBe(true);
  });

  it('same content → same id → alreadyPresent, staging discarded', async () => {
    const { home, registry } = await freshRegistry();
    const first = await registerSynthetic(registry, { label: 'one' });
    const second = await registerSynthetic(registry, { label: 'two' });
    expect(second.alreadyPresent).toBe(true);
    expect(second.base.id).toBe(first.base.id);
    expect(second.base.label).toBe('one');
    expect(registry.list()).toHaveLength(1);
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
  });

  it('the id changes when the disk, the memory snapshot or the spec changes (and not with the disk path)', async () => {
    const { registry } = await freshRegistry();
    const ids = [
      (await registerSynthetic(registry)).base.id,
      (await registerSynthetic(registry, { disk: { ...DEFAULT_DISK, seed: 2 } })).base.id,
      (await registerSynthetic(registry, { memory: { ...DEFAULT_MEMORY, seed: 2 } })).base.id,
      (await registerSynthetic(registry, { spec: defaultSpec({ memoryMiB: 32 }) })).base.id,
      (await registerSynthetic(registry, { disk: { ...DEFAULT_DISK, bytes: DEFAULT_DISK.bytes + 512 } })).base
        .id,
    ];
    expect(new Set(ids).size).toBe(ids.length);
    const samePathElsewhere = await registerSynthetic(registry, {
      spec: { memoryMiB: 16, disks: [{ file: '/other/place.raw', format: 'raw' }] },
    });
    expect(samePathElsewhere.alreadyPresent).toBe(true);
    expect(samePathElsewhere.base.id).toBe(ids[0]);
    expect(registry.list()).toHaveLength(ids.length);
  });

  it('remove() deletes row and files; removing again is a clear error', async () => {
    const { home, registry } = await freshRegistry();
    const { base } = await registerSynthetic(registry);
    const removed = await registry.remove(base.id.slice(0, 10));
    expect(removed.id).toBe(base.id);
    expect(registry.list()).toEqual([]);
    expect(await tree(join(home, 'bases'))).toEqual([]);
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
    const error = await registryError(registry.remove(base.id));
    expect(error).toBeInstanceOf(BaseNotFoundError);
    expect(error.message).toBe(`no base VM "${base.id}" (the registry is empty)`);
  });

  it('get(): not found lists known ids; ambiguous and malformed prefixes are errors', async () => {
    const { home, registry } = await freshRegistry();
    const { base } = await registerSynthetic(registry);
    const missing = base.id.startsWith('ffff') ? '0000' : 'ffff';
    const notFound = await registryError(() => registry.get(missing));
    expect(notFound).toBeInstanceOf(BaseNotFoundError);
    expect((notFound as BaseNotFoundError).known).toEqual([base.id]);
    expect(notFound.message).toBe(`no base VM "${missing}" (known: ${base.id.slice(0, 12)})`);
    // A second id sharing the first 6 digits (written straight into the table: only get() reads it).
    const twin = base.id.slice(0, 6) + (base.id[6] === '0' ? '1' : '0') + base.id.slice(7);
    const db = new Database(join(home, 'registry.db'));
    db.prepare(
      `INSERT INTO bases VALUES (?, NULL, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', 1, 1, 'x', 'y', '{}')`,
    ).run(twin);
    db.close();
    const ambiguous = await registryError(() => registry.get(base.id.slice(0, 6)));
    expect(ambiguous.code).toBe('bad-id');
    expect(ambiguous.message).toMatch(/matches 2 bases/);
    expect(registry.get(base.id.slice(0, 7)).id).toBe(base.id);
    expect((await registryError(() => registry.get('abc'))).message).toMatch(/too short/);
    expect((await registryError(() => registry.get('not-hex'))).code).toBe('bad-id');
  });
});

describe('register() refuses bad input and leaves nothing behind', () => {
  async function failedRegistration(
    prepare: (s: { diskPath: string; memoryPath: string; dir: string }) => Promise<void>,
    spec: unknown = defaultSpec(),
  ) {
    const { home, registry } = await freshRegistry();
    const staging = await registry.stage();
    await prepare(staging);
    const error = await registryError(
      registry.register(staging, { spec, hostFacts: { qemuVersion: '7.2' } }),
    );
    expect(registry.list()).toEqual([]);
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
    expect(await readdir(join(home, 'bases'))).toEqual([]);
    return error;
  }
  const goodMemory = (s: { memoryPath: string }) => writeMemory(s.memoryPath, DEFAULT_MEMORY);

  it('a qcow2 disk', async () => {
    const error = await failedRegistration(async (s) => {
      await writeDisk(s.diskPath, DEFAULT_DISK);
      const handle = await import('node:fs/promises').then((fs) => fs.open(s.diskPath, 'r+'));
      await handle.write(Buffer.from('QFI\xfb\x00\x00\x00\x03', 'latin1'), 0, 8, 0);
      await handle.close();
      await goodMemory(s);
    });
    expect(error.code).toBe('bad-disk');
    expect(error.message).toBe('disk.raw is not a raw disk image (looks like qcow2)');
  });

  it('a VMDK, a VDI', async () => {
    for (const [at, magic, name] of [
      [0, 'KDMV', 'VMDK'],
      [64, '\x7f\x10\xda\xbe', 'VDI'],
    ] as const) {
      const error = await failedRegistration(async (s) => {
        const head = Buffer.alloc(4096);
        head.write(magic, at, 'latin1');
        await writeFile(s.diskPath, head);
        await goodMemory(s);
      });
      expect(error.message).toBe(`disk.raw is not a raw disk image (looks like ${name})`);
    }
  });

  it('a disk that is not whole sectors, an empty disk, no disk', async () => {
    const ragged = await failedRegistration(async (s) => {
      await writeFile(s.diskPath, Buffer.alloc(1000, 1));
      await goodMemory(s);
    });
    expect(ragged.message).toMatch(/1000 bytes, not a whole number of 512-byte sectors/);
    const empty = await failedRegistration(async (s) => {
      await writeFile(s.diskPath, '');
      await goodMemory(s);
    });
    expect(empty.message).toBe('disk.raw is empty');
    const missing = await failedRegistration(goodMemory);
    expect(missing.code).toBe('bad-disk');
  });

  it('a memory snapshot that does not parse or is truncated', async () => {
    const garbage = await failedRegistration(async (s) => {
      await writeDisk(s.diskPath, DEFAULT_DISK);
      await writeFile(s.memoryPath, 'not a migration stream');
    });
    expect(garbage.code).toBe('bad-memory');
    expect(garbage.message).toMatch(/^memory\.snap: bad-magic/);
    const cut = await failedRegistration(async (s) => {
      await writeDisk(s.diskPath, DEFAULT_DISK);
      await goodMemory(s);
      await truncate(s.memoryPath, 50_000);
    });
    expect(cut.message).toMatch(/^memory\.snap: truncated/);
  });

  it('a spec with two disks, or one that fails the VmSpec schema', async () => {
    const prepare = async (s: { diskPath: string; memoryPath: string }) => {
      await writeDisk(s.diskPath, DEFAULT_DISK);
      await goodMemory(s);
    };
    const twoDisks = await failedRegistration(
      prepare,
      defaultSpec({
        disks: [
          { file: '/a', format: 'raw' },
          { file: '/b', format: 'raw' },
        ],
      }),
    );
    expect(twoDisks.code).toBe('bad-spec');
    expect(twoDisks.message).toMatch(/exactly one disk/);
    const badCpu = await failedRegistration(prepare, defaultSpec({ cpu: 'host' }));
    expect(badCpu.code).toBe('bad-spec');
    expect(badCpu.message).toMatch(/^invalid VM spec: cpu:/);
  });

  it('a staging used twice', async () => {
    const { registry } = await freshRegistry();
    const staging = await registry.stage();
    await writeDisk(staging.diskPath, DEFAULT_DISK);
    await writeMemory(staging.memoryPath, DEFAULT_MEMORY);
    await registry.register(staging, { spec: defaultSpec(), hostFacts: { qemuVersion: '7.2' } });
    const error = await registryError(
      registry.register(staging, { spec: defaultSpec(), hostFacts: { qemuVersion: '7.2' } }),
    );
    expect(error.code).toBe('invalid-state');
  });
});

describe('cancelling', () => {
  it('an aborted register() rejects with the reason and leaves nothing', async () => {
    const { home, registry } = await freshRegistry();
    const staging = await registry.stage();
    await writeDisk(staging.diskPath, { bytes: 32 * 1024 * 1024 });
    await writeMemory(staging.memoryPath, DEFAULT_MEMORY);
    const abort = new AbortController();
    const error = await registry
      .register(staging, {
        spec: defaultSpec(),
        hostFacts: { qemuVersion: '7.2' },
        signal: abort.signal,
        onProgress: () => abort.abort(new Error('user pressed Ctrl-C')),
      })
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe('user pressed Ctrl-C');
    expect(registry.list()).toEqual([]);
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
    expect(await readdir(join(home, 'bases'))).toEqual([]);
  });
});

describe('boot files', () => {
  it('copies the kernel and initrd the spec names into the base, and the id covers them', async () => {
    const { home, registry } = await freshRegistry();
    const dir = testTempDir('cloudlet-registry-');
    await writeFile(join(dir, 'vmlinuz'), 'kernel bytes');
    await writeFile(join(dir, 'initrd.img'), 'initrd bytes');
    const spec = defaultSpec({
      kernel: join(dir, 'vmlinuz'),
      initrd: join(dir, 'initrd.img'),
      append: 'console=ttyS0',
    });
    const { base } = await registerSynthetic(registry, { spec });
    expect(base.spec.kernel).toBe('kernel');
    expect(base.localSpec.kernel).toBe(join(home, 'bases', base.id, 'kernel'));
    expect(await readFile(base.paths.kernel ?? '', 'utf8')).toBe('kernel bytes');
    expect(await readFile(base.paths.initrd ?? '', 'utf8')).toBe('initrd bytes');
    expect(base.manifest.kernel?.bytes).toBe(12);
    await writeFile(join(dir, 'vmlinuz'), 'other kernel');
    const other = await registerSynthetic(registry, { spec });
    expect(other.alreadyPresent).toBe(false);
    expect(other.base.id).not.toBe(base.id);
  });

  it('a missing kernel is a clear error', async () => {
    const { registry } = await freshRegistry();
    const error = await registryError(
      registerSynthetic(registry, { spec: defaultSpec({ kernel: '/nonexistent/vmlinuz' }) }),
    );
    expect(error.code).toBe('bad-boot-file');
    expect(error.message).toBe('kernel /nonexistent/vmlinuz: no such file');
  });
});

describe('open() reconciles what crashes left', () => {
  function deadPid(): number {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    return Number(child.stdout.toString());
  }

  it('removes tmp folders of dead processes and unknown tmp entries, keeps those of live ones', async () => {
    const { home, registry } = await freshRegistry();
    const live = await registry.stage();
    await writeFile(live.diskPath, 'in progress');
    const dead = join(home, 'tmp', `stage-${deadPid()}-0-0123456789ab`);
    const recycled = join(home, 'tmp', `import-${process.pid}-1-0123456789ab`); // our pid, wrong start time
    const junk = join(home, 'tmp', 'something-else');
    for (const dir of [dead, recycled, junk]) await mkdir(dir);
    await writeFile(join(dead, 'disk.raw'), 'x');
    const lines: string[] = [];
    const second = await openBaseRegistry({ home, onLog: (line) => lines.push(line) });
    expect(second.reconciled.removedTemp.sort()).toEqual(
      ['something-else', basename(dead), basename(recycled)].sort(),
    );
    expect(existsSync(live.dir)).toBe(true);
    expect(lines).toHaveLength(3);
    second.close();
    registry.close();
  });

  it('removes a bases/<id> folder without a row, and drops a row whose folder is gone', async () => {
    const { home, registry } = await freshRegistry();
    const kept = (await registerSynthetic(registry)).base;
    const gone = (await registerSynthetic(registry, { disk: { ...DEFAULT_DISK, seed: 5 } })).base;
    const damaged = (await registerSynthetic(registry, { disk: { ...DEFAULT_DISK, seed: 6 } })).base;
    registry.close();
    await rm(gone.paths.dir, { recursive: true });
    await rm(damaged.paths.memoryIndex);
    const orphan = join(home, 'bases', 'a'.repeat(64));
    await mkdir(orphan);
    await writeFile(join(orphan, 'disk.raw'), 'half');
    const notOurs = join(home, 'bases', 'README');
    await writeFile(notOurs, 'a user file');
    const reopened = await openBaseRegistry({ home });
    expect(reopened.reconciled.droppedRows.sort()).toEqual([gone.id, damaged.id].sort());
    expect(reopened.reconciled.removedOrphans).toEqual(['a'.repeat(64)]);
    expect(reopened.list().map((b) => b.id)).toEqual([kept.id]);
    expect((await readdir(join(home, 'bases'))).sort()).toEqual([kept.id, 'README'].sort());
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
    reopened.close();
  });
});
