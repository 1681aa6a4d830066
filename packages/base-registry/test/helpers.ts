import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type RamPage, type StreamPrologue, writeMigrationStream } from '@cloudlet/memory-snapshot';
import type { BaseRegistry, RegisterResult } from '../src/index.js';

const PAGE = 4096;

/** Deterministic page whose bytes identify `seed`. */
export function patternPage(seed: number): Buffer {
  const page = Buffer.alloc(PAGE);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < PAGE; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    page.writeUInt32LE(x, i);
  }
  return page;
}

export interface SyntheticDisk {
  /** Size in bytes (a multiple of 512). */
  bytes: number;
  /** Seed for the content; different seeds give different disks. */
  seed?: number;
  /** Fraction of 4 KiB chunks that hold data (the rest stay holes); default 0.5. */
  dataFraction?: number;
  /** Data chunks are random (incompressible) instead of patterned. */
  random?: boolean;
}

/** A raw disk with data chunks and holes, written sparse. */
export async function writeDisk(path: string, disk: SyntheticDisk): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const chunks = Math.floor(disk.bytes / PAGE);
    const every = Math.max(1, Math.round(1 / (disk.dataFraction ?? 0.5)));
    const batch: { at: number; data: Buffer }[] = [];
    for (let i = 0; i < chunks; i++) {
      if (i % every !== 0) continue;
      batch.push({
        at: i * PAGE,
        data: disk.random ? randomBytes(PAGE) : patternPage((disk.seed ?? 1) * 1_000_003 + i),
      });
      if (batch.length >= 256) await flush(handle, batch.splice(0));
    }
    await flush(handle, batch);
    await handle.truncate(disk.bytes);
  } finally {
    await handle.close();
  }
}

async function flush(handle: Awaited<ReturnType<typeof open>>, batch: { at: number; data: Buffer }[]) {
  for (const { at, data } of batch) await handle.write(data, 0, data.length, at);
}

export const MACHINE_TYPE = 'pc-i440fx-7.2';

export function syntheticPrologue(ramPages: number, machineType = MACHINE_TYPE): StreamPrologue {
  const config = Buffer.alloc(4 + machineType.length);
  config.writeUInt32BE(machineType.length, 0);
  config.write(machineType, 4, 'latin1');
  return {
    version: 3,
    machineType,
    capabilities: [],
    configBytes: config,
    ramSectionId: 2,
    ramInstanceId: 0,
    ramVersionId: 4,
    blocks: [
      { name: 'pc.ram', length: ramPages * PAGE },
      { name: 'pc.bios', length: 4 * PAGE },
    ],
    hasSectionFooters: true,
  };
}

/** Device sections + EOF, as QEMU sends them after RAM (opaque to the registry). */
export function syntheticDeviceTail(marker = 1): Uint8Array {
  const name = Buffer.from('timer', 'latin1');
  const body = Buffer.alloc(16, marker);
  const tail = Buffer.alloc(1 + 4 + 1 + name.length + 8 + body.length + 5 + 1);
  let at = tail.writeUInt8(0x04, 0);
  at = tail.writeUInt32BE(3, at);
  at = tail.writeUInt8(name.length, at);
  at += name.copy(tail, at);
  at = tail.writeUInt32BE(0, at);
  at = tail.writeUInt32BE(1, at);
  at += body.copy(tail, at);
  at = tail.writeUInt8(0x7e, at);
  at = tail.writeUInt32BE(3, at);
  tail.writeUInt8(0x00, at);
  return tail;
}

export interface SyntheticMemory {
  /** Pages of pc.ram (pc.bios adds 4). */
  ramPages: number;
  seed?: number;
  /** Every n-th page is a zero record; default 3. */
  zeroEvery?: number;
  /** Pages left out of the stream entirely (they read as zero). */
  omit?: (index: number) => boolean;
  /** Random page contents (incompressible). */
  random?: boolean;
  machineType?: string;
}

/** A QEMU-style migration stream with every page (some zero), written by @cloudlet/memory-snapshot. */
export async function writeMemory(path: string, memory: SyntheticMemory): Promise<void> {
  const prologue = syntheticPrologue(memory.ramPages, memory.machineType);
  const zeroEvery = memory.zeroEvery ?? 3;
  function* pages(): Generator<RamPage> {
    let n = 0;
    for (const block of prologue.blocks) {
      for (let offset = 0; offset < block.length; offset += PAGE, n++) {
        if (memory.omit?.(n)) continue;
        const data =
          n % zeroEvery === 0
            ? null
            : memory.random
              ? randomBytes(PAGE)
              : patternPage((memory.seed ?? 1) * 7919 + n);
        yield { block: block.name, offset, data };
      }
    }
  }
  await pipeline(
    Readable.from(
      writeMigrationStream({ prologue, pages: pages(), deviceTail: syntheticDeviceTail(memory.seed ?? 1) }),
    ),
    createWriteStream(path),
  );
}

export interface SyntheticBase {
  disk?: SyntheticDisk;
  memory?: SyntheticMemory;
  spec?: Record<string, unknown>;
  label?: string;
}

export const DEFAULT_DISK: SyntheticDisk = { bytes: 2 * 1024 * 1024, seed: 1 };
export const DEFAULT_MEMORY: SyntheticMemory = { ramPages: 256, seed: 1 };

export function defaultSpec(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { memoryMiB: 16, disks: [{ file: '/somewhere/base.img', format: 'raw' }], ...extra };
}

/** Stages and registers a synthetic base. */
export async function registerSynthetic(
  registry: BaseRegistry,
  base: SyntheticBase = {},
): Promise<RegisterResult> {
  const staging = await registry.stage();
  await writeDisk(staging.diskPath, base.disk ?? DEFAULT_DISK);
  await writeMemory(staging.memoryPath, base.memory ?? DEFAULT_MEMORY);
  return registry.register(staging, {
    spec: base.spec ?? defaultSpec(),
    hostFacts: { qemuVersion: '7.2.22' },
    ...(base.label !== undefined ? { label: base.label } : {}),
  });
}

/** Every file and folder under `root`, relative, sorted (folders end in /). */
export async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        out.push(`${relative(root, path)}/`);
        await walk(path);
      } else out.push(relative(root, path));
    }
  }
  await walk(root);
  return out.sort();
}

/** Bytes a file really occupies on disk (holes excluded). */
export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}
