// Throughput of @cloudlet/memory-snapshot's stream reader and writer on a synthetic, realistic stream:
// a 256 MiB guest (plus the small ROM blocks QEMU's pc machine has) with ~40% pseudo-random full
// pages scattered among zero pages, fed to the reader in 64 KiB chunks like a file stream.
// Run: pnpm exec tsx bench/memory-snapshot-reader.ts   (prints JSON; MB = 10^6 bytes)
import { hash, randomFillSync } from 'node:crypto';
import {
  PAGE_SIZE,
  type RamBlock,
  type RamPage,
  readMigrationStream,
  type StreamPrologue,
  writeMigrationStream,
} from '../packages/memory-snapshot/src/index.js';

const GUEST_MIB = 256;
const FULL_FRACTION = 0.4;
const INPUT_CHUNK = 64 * 1024;
const RUNS = 5;

const blocks: RamBlock[] = [
  { name: 'pc.ram', length: GUEST_MIB * 1024 * 1024 },
  { name: '/rom@etc/acpi/tables', length: 0x20000 },
  { name: 'pc.bios', length: 0x40000 },
  { name: '0000:00:03.0/virtio-net-pci.rom', length: 0x40000 },
  { name: 'pc.rom', length: 0x20000 },
  { name: '/rom@etc/table-loader', length: 0x1000 },
  { name: '/rom@etc/acpi/rsdp', length: 0x1000 },
];

const machineType = 'pc-i440fx-7.2';
const configBytes = new Uint8Array(4 + machineType.length);
new DataView(configBytes.buffer).setUint32(0, machineType.length);
configBytes.set(Buffer.from(machineType, 'latin1'), 4);

const prologue: StreamPrologue = {
  version: 3,
  machineType,
  capabilities: [],
  configBytes,
  ramSectionId: 2,
  ramInstanceId: 0,
  ramVersionId: 4,
  blocks,
  hasSectionFooters: true,
};

/** Deterministic xorshift so every run synthesises the same stream. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function synthPages(): { pages: RamPage[]; full: number; zero: number } {
  const random = rng(42);
  const totalPages = blocks.reduce((s, b) => s + b.length / PAGE_SIZE, 0);
  const content = new Uint8Array(Math.ceil(totalPages * FULL_FRACTION * 1.05) * PAGE_SIZE);
  randomFillSync(content);
  const pages: RamPage[] = [];
  let full = 0;
  let zero = 0;
  for (const b of blocks) {
    for (let offset = 0; offset < b.length; offset += PAGE_SIZE) {
      if (random() < FULL_FRACTION && (full + 1) * PAGE_SIZE <= content.length) {
        pages.push({
          block: b.name,
          offset,
          data: content.subarray(full * PAGE_SIZE, (full + 1) * PAGE_SIZE),
        });
        full++;
      } else {
        pages.push({ block: b.name, offset, data: null });
        zero++;
      }
    }
  }
  return { pages, full, zero };
}

/** A device tail of plausible size (~105 KB in a real pc machine snapshot). */
function synthDeviceTail(): Uint8Array {
  const body = new Uint8Array(105_000);
  randomFillSync(body);
  const name = Buffer.from('virtio-net', 'latin1');
  const tail = new Uint8Array(1 + 4 + 1 + name.length + 8 + body.length + 5 + 1);
  const v = new DataView(tail.buffer);
  let at = 0;
  tail[at++] = 0x04;
  v.setUint32(at, 3);
  at += 4;
  tail[at++] = name.length;
  tail.set(name, at);
  at += name.length;
  v.setUint32(at, 0);
  v.setUint32(at + 4, 11);
  at += 8;
  tail.set(body, at);
  at += body.length;
  tail[at++] = 0x7e;
  v.setUint32(at, 3);
  at += 4;
  tail[at] = 0x00;
  return tail;
}

async function* inChunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function timeRuns(
  run: () => Promise<number>,
): Promise<{ runsMs: number[]; medianMs: number; bytes: number }> {
  const runsMs: number[] = [];
  let bytes = 0;
  await run(); // warm-up (JIT)
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    bytes = await run();
    runsMs.push(Math.round((performance.now() - t0) * 10) / 10);
  }
  return { runsMs, medianMs: median(runsMs), bytes };
}

const { pages, full, zero } = synthPages();
const deviceTail = synthDeviceTail();
const vmdesc = Buffer.from(
  JSON.stringify({
    page_size: 4096,
    devices: Array.from({ length: 34 }, (_, i) => ({ name: `dev${i}`, instance_id: 0, fields: [] })),
  }),
);

const writer = await timeRuns(async () => {
  let bytes = 0;
  for await (const chunk of writeMigrationStream({ prologue, pages, deviceTail, vmdesc }))
    bytes += chunk.length;
  return bytes;
});

const parts: Uint8Array[] = [];
for await (const chunk of writeMigrationStream({ prologue, pages, deviceTail, vmdesc })) parts.push(chunk);
const stream = Buffer.concat(parts);

let seen = { full: 0, zero: 0 };
const reader = await timeRuns(async () => {
  let fullPages = 0;
  let zeroPages = 0;
  for await (const item of readMigrationStream(inChunks(stream, INPUT_CHUNK))) {
    if (item.kind !== 'page') continue;
    if (item.page.data === null) zeroPages++;
    else fullPages++;
  }
  seen = { full: fullPages, zero: zeroPages };
  return stream.length;
});
if (seen.full !== full || seen.zero !== zero)
  throw new Error(`reader saw ${JSON.stringify(seen)}, wrote ${full}/${zero}`);

// Baseline in the same run: sha256 of the same input chunks, the work overlay creation does on every page
// anyway. reader/sha256 > 1 means parsing costs less than hashing.
const sha256 = await timeRuns(async () => {
  for await (const chunk of inChunks(stream, INPUT_CHUNK)) hash('sha256', chunk, 'buffer');
  return stream.length;
});

const mbps = (bytes: number, ms: number) => Math.round(bytes / 1e6 / (ms / 1000));
console.log(
  JSON.stringify(
    {
      node: process.version,
      guestMiB: GUEST_MIB,
      streamBytes: stream.length,
      fullPages: full,
      zeroPages: zero,
      inputChunkBytes: INPUT_CHUNK,
      reader: { ...reader, MBps: mbps(reader.bytes, reader.medianMs) },
      writer: { ...writer, MBps: mbps(writer.bytes, writer.medianMs) },
      sha256Baseline: { ...sha256, MBps: mbps(sha256.bytes, sha256.medianMs) },
      readerOverSha256: Math.round((sha256.medianMs / reader.medianMs) * 100) / 100,
    },
    null,
    2,
  ),
);
