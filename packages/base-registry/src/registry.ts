import { existsSync, renameSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ChunkIndex,
  ChunkIndexError,
  createDedupLookup,
  type DedupLookup,
  readChunkIndex,
} from '@cloudlet/delta';
import { parseVmSpec } from '@cloudlet/qemu-driver';
import { type BaseInfo, baseInfoFromRow } from './base-info.js';
import { assertOpen, type RegistryContext, type RegistryHooks } from './context.js';
import { allIds, allRows, deleteRow, openDatabase, rowById, rowsWithPrefix } from './database.js';
import { BaseNotFoundError, RegistryError } from './errors.js';
import { type ExportOptions, type ExportResult, exportBaseTo } from './export-base.js';
import { finishBase } from './finish-base.js';
import { type ImportOptions, importBaseFrom } from './import-base.js';
import { defaultHome, homeLayout } from './layout.js';
import type { VmBackendName } from './manifest.js';
import { portableSpec } from './portable-spec.js';
import type { ProgressListener } from './progress.js';
import { type ReconcileReport, reconcileHome } from './reconcile.js';
import { type BaseStaging, completeStaging, createStagingSet } from './staging.js';
import { tempName } from './temp-owner.js';

export interface OpenBaseRegistryOptions {
  /** Registry home; default `$CLOUDLET_HOME`, else `~/.cloudlet`. Created if missing. */
  home?: string;
  /** For http(s) imports; default the global fetch. */
  fetch?: typeof globalThis.fetch;
  /** Clock for createdAt/addedAt; default `() => new Date()`. */
  now?: () => Date;
  /** Receives one line per thing open() cleaned up (also returned as `reconciled`). */
  onLog?: (message: string) => void;
  /** Threads for disk indexing; default one per core. */
  diskIndexWorkers?: number;
  /** Crash-test fault points; leave unset. */
  hooks?: RegistryHooks;
}

export interface RegisterOptions {
  /** The spec the snapshot was taken with (driver input or parsed; file paths as used). */
  spec: unknown;
  /** `backend`: the VmBackend that ran the VM (default 'qemu', the direct driver). */
  hostFacts: { qemuVersion: string; cpuModel?: string; backend?: VmBackendName };
  label?: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface RegisterResult {
  base: BaseInfo;
  /** The same content was registered before; nothing new was stored. */
  alreadyPresent: boolean;
}

export interface BaseRegistry {
  readonly home: string;
  /** What open() cleaned up. */
  readonly reconciled: ReconcileReport;
  stage(): Promise<BaseStaging>;
  register(staging: BaseStaging, options: RegisterOptions): Promise<RegisterResult>;
  /** All bases, oldest first. */
  list(): BaseInfo[];
  /** A base by full id or unique prefix (at least 4 hex digits). */
  get(idOrPrefix: string): BaseInfo;
  /** Removes the row and the folder; returns what was removed. */
  remove(idOrPrefix: string): Promise<BaseInfo>;
  /** The base's disk and memory chunk indexes, read and verified from its index files. */
  openIndexes(idOrPrefix: string): Promise<{ disk: ChunkIndex; memory: ChunkIndex }>;
  /** Dedup lookup (hash → memory page or disk chunk) over the base's indexes. */
  openLookup(idOrPrefix: string): Promise<DedupLookup>;
  exportBase(idOrPrefix: string, zipFile: string, options?: ExportOptions): Promise<ExportResult>;
  /** Imports a package from a file path or an http(s) URL, verifying every hash first. */
  importBase(source: string, options?: ImportOptions): Promise<RegisterResult>;
  close(): void;
}

const MIN_PREFIX = 4;

export async function openBaseRegistry(options: OpenBaseRegistryOptions = {}): Promise<BaseRegistry> {
  const layout = homeLayout(options.home ?? defaultHome());
  await mkdir(layout.bases, { recursive: true });
  await mkdir(layout.tmp, { recursive: true });
  const db = openDatabase(layout.database);
  let open = true;
  const ctx: RegistryContext = {
    layout,
    db,
    now: options.now ?? (() => new Date()),
    fetch: options.fetch ?? globalThis.fetch,
    log: options.onLog ?? (() => {}),
    hooks: options.hooks ?? {},
    diskIndexWorkers: options.diskIndexWorkers,
    isOpen: () => open,
  };
  let reconciled: ReconcileReport;
  try {
    reconciled = await reconcileHome(ctx);
  } catch (e) {
    db.close();
    throw e;
  }
  const stagings = createStagingSet(ctx);

  function get(idOrPrefix: string): BaseInfo {
    assertOpen(ctx);
    const wanted = idOrPrefix.trim().toLowerCase();
    if (!/^[0-9a-f]+$/.test(wanted) || wanted.length > 64)
      throw new RegistryError('bad-id', `"${idOrPrefix}" is not a base id (hex digits)`);
    const row = wanted.length === 64 ? rowById(db, wanted) : undefined;
    if (row) return baseInfoFromRow(row, layout);
    if (wanted.length < 64) {
      if (wanted.length < MIN_PREFIX)
        throw new RegistryError(
          'bad-id',
          `id prefix "${idOrPrefix}" is too short (use at least ${MIN_PREFIX} digits)`,
        );
      const rows = rowsWithPrefix(db, wanted);
      const [only, ...others] = rows;
      if (only && others.length === 0) return baseInfoFromRow(only, layout);
      if (only)
        throw new RegistryError(
          'bad-id',
          `id prefix "${idOrPrefix}" matches ${rows.length} bases: ${rows.map((r) => r.id.slice(0, 12)).join(', ')}`,
        );
    }
    throw new BaseNotFoundError(idOrPrefix, allIds(db));
  }

  async function readIndexes(base: BaseInfo) {
    try {
      const [disk, memory] = await Promise.all([
        readChunkIndex(base.paths.diskIndex),
        readChunkIndex(base.paths.memoryIndex),
      ]);
      return { disk, memory };
    } catch (e) {
      const why = e instanceof ChunkIndexError ? e.message : (e as Error).message;
      throw new RegistryError('corrupt-base', `base ${base.id}: ${why}`, { cause: e });
    }
  }

  const registry: BaseRegistry = {
    home: layout.home,
    get reconciled() {
      return reconciled;
    },
    async stage() {
      assertOpen(ctx);
      return stagings.create();
    },
    async register(staging, opts) {
      assertOpen(ctx);
      stagings.claim(staging);
      try {
        const given = parseVmSpecOrBad(opts.spec);
        await completeStaging(staging, { kernel: given.kernel, initrd: given.initrd });
        const { manifest, alreadyPresent } = await finishBase(
          ctx,
          staging.dir,
          {
            spec: portableSpec(given),
            qemuVersion: opts.hostFacts.qemuVersion,
            cpuModel: opts.hostFacts.cpuModel ?? given.cpu,
            backend: opts.hostFacts.backend ?? 'qemu',
            label: opts.label,
            createdAt: ctx.now().toISOString(),
          },
          { onProgress: opts.onProgress, signal: opts.signal },
        );
        return { base: get(manifest.id), alreadyPresent };
      } finally {
        await staging.discard();
      }
    },
    list() {
      assertOpen(ctx);
      return allRows(db).map((row) => baseInfoFromRow(row, layout));
    },
    get,
    async remove(idOrPrefix) {
      const base = get(idOrPrefix);
      const away = join(layout.tmp, tempName('trash'));
      // Row and folder go together under the write lock; the bytes are deleted after it.
      db.transaction(() => {
        deleteRow(db, base.id);
        if (existsSync(base.paths.dir)) renameSync(base.paths.dir, away);
      }).immediate();
      await rm(away, { recursive: true, force: true });
      return base;
    },
    async openIndexes(idOrPrefix) {
      return readIndexes(get(idOrPrefix));
    },
    async openLookup(idOrPrefix) {
      return createDedupLookup(await readIndexes(get(idOrPrefix)));
    },
    async exportBase(idOrPrefix, zipFile, opts = {}) {
      return exportBaseTo(get(idOrPrefix), zipFile, opts);
    },
    async importBase(source, opts = {}) {
      assertOpen(ctx);
      const { id, alreadyPresent } = await importBaseFrom(ctx, source, opts);
      return { base: get(id), alreadyPresent };
    },
    close() {
      if (!open) return;
      open = false;
      db.close();
    },
  };
  return registry;
}

function parseVmSpecOrBad(spec: unknown) {
  try {
    return parseVmSpec(spec);
  } catch (e) {
    throw new RegistryError('bad-spec', (e as Error).message, { cause: e });
  }
}
