// Reads, rewrites and restores real QEMU 7.2 migration streams. No guest kernel: the source runs
// SeaBIOS for a moment (so RAM holds real firmware state and the saved run state is 'paused', not
// 'prelaunch'), plus a recognisable blob placed with `-device loader`, which only the source has
// (so the destination can only get it from our stream).
import { createReadStream, createWriteStream, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PAGE_SIZE,
  pageIndexer,
  type RamPage,
  readMigrationStream,
  type StreamPrologue,
  writeMigrationStream,
} from '../src/index.js';
import { HARDWARE, Qemu, shellQuote } from './qemu-harness.js';

const MEM_MIB = 64;
const BLOB_ADDR = 0x20_0000;
const BLOB_PAGES = 16;

interface Snapshot {
  prologue: StreamPrologue;
  /** Every page record, in stream order (data copied out of the read chunks). */
  pages: RamPage[];
  deviceTail: Uint8Array;
  vmdesc: Uint8Array | null;
}

async function readSnapshot(file: string): Promise<Snapshot> {
  let prologue: StreamPrologue | undefined;
  let deviceTail: Uint8Array | undefined;
  let vmdesc: Uint8Array | null = null;
  const pages: RamPage[] = [];
  for await (const item of readMigrationStream(createReadStream(file, { highWaterMark: 64 * 1024 }))) {
    if (item.kind === 'prologue') prologue = item.prologue;
    else if (item.kind === 'page') pages.push({ ...item.page, data: item.page.data?.slice() ?? null });
    else if (item.kind === 'deviceTail') deviceTail = item.bytes;
    else vmdesc = item.json;
  }
  if (prologue === undefined || deviceTail === undefined) throw new Error(`incomplete snapshot ${file}`);
  return { prologue, pages, deviceTail, vmdesc };
}

async function writeSnapshot(
  file: string,
  snap: Snapshot,
  pages: RamPage[],
  keepVmdesc: boolean,
): Promise<void> {
  const chunks = writeMigrationStream({
    prologue: snap.prologue,
    pages,
    deviceTail: snap.deviceTail,
    ...(keepVmdesc && snap.vmdesc !== null ? { vmdesc: snap.vmdesc } : {}),
    pagesPerSection: 100,
  });
  await pipeline(Readable.from(chunks), createWriteStream(file));
}

/** Non-zero pages keyed "block@offset" → hex, for whole-RAM comparisons. */
function nonZeroPages(snap: Snapshot): Map<string, string> {
  const out = new Map<string, string>();
  for (const { block, offset, data } of snap.pages) {
    if (data === null || data.every((b) => b === 0)) continue;
    out.set(`${block}@${offset}`, Buffer.from(data).toString('hex'));
  }
  return out;
}

/** Lets the firmware run, so the snapshot's run state is 'paused' (set by the stop before migrating). */
async function runBriefly(qemu: Qemu): Promise<void> {
  await qemu.execute('cont');
  await sleep(300);
}

function blobPage(i: number): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  const tag = Buffer.from(`cloudlet blob page ${i} `);
  for (let at = 0; at < PAGE_SIZE; at += tag.length) page.set(tag.subarray(0, PAGE_SIZE - at), at);
  return page;
}

describe('real QEMU 7.2 migration streams', () => {
  const all: Qemu[] = [];
  let dir = '';
  let original: Snapshot;
  let rebuiltFile = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'memory-snapshot-vm-'));
    const blob = join(dir, 'blob.bin');
    writeFileSync(blob, Buffer.concat(Array.from({ length: BLOB_PAGES }, (_, i) => blobPage(i))));
    const source = await Qemu.start(
      dir,
      'source',
      [...HARDWARE(MEM_MIB), '-device', `loader,file=${blob},addr=0x${BLOB_ADDR.toString(16)},force-raw=on`],
      all,
    );
    await runBriefly(source);
    await source.snapshotTo(join(dir, 'original.snap'));
    source.kill();
    original = await readSnapshot(join(dir, 'original.snap'));
  });

  afterAll(async () => {
    for (const q of all) q.kill();
    await Promise.all(all.map((q) => q.exited));
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('parses the prologue, block table and every page exactly once', () => {
    const { prologue } = original;
    expect(prologue.machineType).toBe('pc-i440fx-7.2');
    expect(prologue.version).toBe(3);
    expect(prologue.hasSectionFooters).toBe(true);
    expect(prologue.capabilities).toEqual([]);
    const byName = new Map(prologue.blocks.map((b) => [b.name, b.length]));
    expect(byName.get('pc.ram')).toBe(MEM_MIB * 1024 * 1024);
    expect(byName.get('0000:00:03.0/virtio-net-pci.rom')).toBeGreaterThan(0);
    expect(byName.has('pc.bios')).toBe(true);

    const ix = pageIndexer(prologue.blocks);
    const seen = new Uint8Array(ix.pageCount);
    for (const p of original.pages)
      seen[ix.indexOf(p.block, p.offset)] = (seen[ix.indexOf(p.block, p.offset)] ?? 0) + 1;
    expect(seen.every((n) => n === 1)).toBe(true);
    expect(original.pages).toHaveLength(ix.pageCount);

    const ram = new Map(original.pages.filter((p) => p.block === 'pc.ram').map((p) => [p.offset, p.data]));
    for (let i = 0; i < BLOB_PAGES; i++) {
      expect(Buffer.from(ram.get(BLOB_ADDR + i * PAGE_SIZE) ?? new Uint8Array(0)).equals(blobPage(i))).toBe(
        true,
      );
    }
    const bios = original.pages.filter((p) => p.block === 'pc.bios' && p.data !== null);
    expect(bios.length).toBeGreaterThan(0);
    expect(original.deviceTail[0]).toBe(0x04);
    expect(original.deviceTail.at(-1)).toBe(0x00);
    expect(JSON.parse(Buffer.from(original.vmdesc ?? []).toString())).toMatchObject({ page_size: 4096 });
  });

  it('a rewritten stream (reversed, zero pages dropped, 100-page sections) restores to identical RAM', async () => {
    rebuiltFile = join(dir, 'rebuilt.snap');
    const kept = original.pages.filter((p) => p.data !== null).reverse();
    await writeSnapshot(rebuiltFile, original, kept, true);

    // The destination has no loader device: the blob can only arrive through the stream.
    const dest = await Qemu.start(dir, 'dest', [...HARDWARE(MEM_MIB), '-incoming', 'defer'], all);
    await dest.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(rebuiltFile)}` });
    expect(await dest.migrationDone()).toBe('completed');
    expect(await dest.execute('query-status')).toMatchObject({ status: 'paused', running: false });

    await dest.snapshotTo(join(dir, 'again.snap'));
    dest.kill();
    const again = await readSnapshot(join(dir, 'again.snap'));
    expect(again.prologue.blocks).toEqual(original.prologue.blocks);
    const before = nonZeroPages(original);
    const after = nonZeroPages(again);
    expect(before.size).toBeGreaterThan(BLOB_PAGES);
    expect(after.size).toBe(before.size);
    for (const [key, hex] of before) expect(after.get(key) === hex, key).toBe(true);
  });

  it('QEMU refuses the stream when the RAM size differs', async () => {
    const wrong = await Qemu.start(dir, 'wrong', [...HARDWARE(MEM_MIB * 2), '-incoming', 'defer'], all);
    await wrong
      .execute('migrate-incoming', { uri: `exec:cat ${shellQuote(rebuiltFile)}` })
      .catch(() => undefined);
    const code = await wrong.exited;
    expect(code).not.toBe(0);
    expect(wrong.stderr).toContain('Size mismatch');
  });

  it('x-ignore-shared streams: mr_addr table parsed, rewritten without vmdesc, and restored', async () => {
    const source = await Qemu.start(dir, 'shared-source', HARDWARE(MEM_MIB), all);
    const caps = { capabilities: [{ capability: 'x-ignore-shared', state: true }] };
    await source.execute('migrate-set-capabilities', caps);
    await runBriefly(source);
    await source.snapshotTo(join(dir, 'shared.snap'));
    source.kill();
    const shared = await readSnapshot(join(dir, 'shared.snap'));
    expect(shared.prologue.capabilities).toEqual(['x-ignore-shared']);
    const bios = shared.prologue.blocks.find((b) => b.name === 'pc.bios');
    expect(bios?.mrAddr).toBe(0xfffc0000n);
    expect(shared.prologue.blocks.every((b) => typeof b.mrAddr === 'bigint')).toBe(true);

    const file = join(dir, 'shared-rebuilt.snap');
    await writeSnapshot(
      file,
      shared,
      shared.pages.filter((p) => p.data !== null),
      false,
    );
    const dest = await Qemu.start(dir, 'shared-dest', [...HARDWARE(MEM_MIB), '-incoming', 'defer'], all);
    await dest.execute('migrate-set-capabilities', caps);
    await dest.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(file)}` });
    expect(await dest.migrationDone()).toBe('completed');
    expect(await dest.execute('query-status')).toMatchObject({ status: 'paused' });
    dest.kill();
  });
});
