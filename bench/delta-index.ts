// Benchmarks of @cloudlet/delta's base indexes. Run: pnpm exec tsx bench/delta-index.ts  (prints JSON;
// MB = 10^6 bytes). Optional args: lookup | indexing (default both).
//  (a) dedup lookup for an 8 GiB disk + 1 GiB RAM base: synthetic random hashes (no 9 GiB of data
//      needed) with ~20 % duplicates; build time, memoryBytes, RSS growth, lookups/s over 2 M queries
//      (half hits, half misses), median of 3.
//  (b) indexDiskImage over a 1 GiB temp file of random, repeated and zero 4 KiB chunks, 1 vs 2
//      workers, median of 3. The file was just written, so it is read from the page cache (dropping
//      it needs root + /proc/sys/vm/drop_caches): this is hashing speed, not disk speed.
import { hash, randomBytes, randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  CHUNK_SIZE,
  createChunkIndex,
  createDedupLookup,
  HASH_SIZE,
  indexDiskImage,
} from '../packages/delta/src/index.js';

const DISK_CHUNKS = (8 * 1024 ** 3) / CHUNK_SIZE; // 2,097,152
const MEMORY_PAGES = (1 * 1024 ** 3) / CHUNK_SIZE; // 262,144
const DUPLICATE_FRACTION = 0.2;
const QUERIES = 2_000_000;
const RUNS = 3;
const IMAGE_BYTES = 1024 ** 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
const rss = () => process.memoryUsage().rss;
// A real gc() (without --expose-gc on the command line) so that RSS readings are not garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Random hashes in which ~DUPLICATE_FRACTION of entries repeat an earlier entry of either space. */
function syntheticHashes(): { memory: Uint8Array; disk: Uint8Array } {
  const memory = randomFillSync(new Uint8Array(MEMORY_PAGES * HASH_SIZE));
  const disk = randomFillSync(new Uint8Array(DISK_CHUNKS * HASH_SIZE));
  const at = (i: number) =>
    i < MEMORY_PAGES
      ? memory.subarray(i * 32, i * 32 + 32)
      : disk.subarray((i - MEMORY_PAGES) * 32, (i - MEMORY_PAGES) * 32 + 32);
  const total = MEMORY_PAGES + DISK_CHUNKS;
  for (let i = 1; i < total; i++) {
    if (Math.random() < DUPLICATE_FRACTION) at(i).set(at(Math.floor(Math.random() * i)));
  }
  return { memory, disk };
}

function benchLookup() {
  gc();
  const rss0 = rss();
  const hashes = syntheticHashes();
  const memory = createChunkIndex('memory', hashes.memory);
  const disk = createChunkIndex('disk', hashes.disk);
  gc();
  const rss1 = rss();
  let lookup = createDedupLookup({ memory, disk });
  gc();
  const rss2 = rss();

  const buildMs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    lookup = createDedupLookup({ memory, disk });
    buildMs.push(performance.now() - t0);
  }

  // Half hits (any chunk of either space), half misses (fresh random hashes), interleaved at random.
  const queries = new Uint8Array(QUERIES * HASH_SIZE);
  randomFillSync(queries);
  let expectedHits = 0;
  for (let q = 0; q < QUERIES; q++) {
    if (Math.random() < 0.5) continue;
    const i = Math.floor(Math.random() * (MEMORY_PAGES + DISK_CHUNKS));
    queries.set(i < MEMORY_PAGES ? memory.hashAt(i) : disk.hashAt(i - MEMORY_PAGES), q * HASH_SIZE);
    expectedHits++;
  }
  const lookupsPerSec: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    let hits = 0;
    const t0 = performance.now();
    for (let q = 0; q < QUERIES; q++) {
      if (lookup.find(queries.subarray(q * HASH_SIZE, q * HASH_SIZE + HASH_SIZE)) !== undefined) hits++;
    }
    const ms = performance.now() - t0;
    if (hits !== expectedHits) throw new Error(`lookup found ${hits} hits, expected ${expectedHits}`);
    lookupsPerSec.push(Math.round(QUERIES / (ms / 1000)));
  }
  return {
    base: { diskChunks: DISK_CHUNKS, memoryPages: MEMORY_PAGES, duplicateFraction: DUPLICATE_FRACTION },
    distinctHashes: lookup.size,
    buildMs: { runs: buildMs.map(Math.round), median: Math.round(median(buildMs)) },
    memoryBytes: lookup.memoryBytes,
    memoryMB: mb(lookup.memoryBytes),
    rssDeltaMB: { hashArrays: mb(rss1 - rss0), lookupTable: mb(rss2 - rss1), total: mb(rss2 - rss0) },
    queries: QUERIES,
    hitFraction: Math.round((expectedHits / QUERIES) * 1000) / 1000,
    lookupsPerSec: { runs: lookupsPerSec, median: median(lookupsPerSec) },
    goals: { lookupsPerSec: 1_000_000, memoryBytes: 128_000_000 },
  };
}

/**
 * Writes IMAGE_BYTES of VM-disk-like content: runs of 1–64 chunks that are random (≈40 %),
 * copies from a pool of 256 chunks (≈25 %), or zero (≈35 %).
 */
async function writeImage(file: string): Promise<Record<string, number>> {
  const pool = new Uint8Array(randomBytes(256 * CHUNK_SIZE));
  const block = new Uint8Array(8 * 1024 * 1024);
  const counts = { random: 0, repeated: 0, zero: 0 };
  const handle = await open(file, 'w');
  try {
    let kind: keyof typeof counts = 'random';
    let runLeft = 0;
    for (let written = 0; written < IMAGE_BYTES; written += block.length) {
      for (let off = 0; off < block.length; off += CHUNK_SIZE) {
        if (runLeft-- <= 0) {
          const r = Math.random();
          kind = r < 0.4 ? 'random' : r < 0.65 ? 'repeated' : 'zero';
          runLeft = 1 + Math.floor(Math.random() * 64);
        }
        const chunk = block.subarray(off, off + CHUNK_SIZE);
        if (kind === 'random') randomFillSync(chunk);
        else if (kind === 'zero') chunk.fill(0);
        else {
          const p = Math.floor(Math.random() * 256) * CHUNK_SIZE;
          chunk.set(pool.subarray(p, p + CHUNK_SIZE));
        }
        counts[kind]++;
      }
      await handle.write(block);
    }
  } finally {
    await handle.close();
  }
  return counts;
}

/** Single-thread sha256 µs per 4 KiB chunk right now: ~3.3 on a quiet core here, more when it is shared. */
function sha256UsPerChunk(): number {
  const data = randomFillSync(new Uint8Array(16384 * CHUNK_SIZE));
  const t0 = performance.now();
  for (let off = 0; off < data.length; off += CHUNK_SIZE)
    hash('sha256', data.subarray(off, off + CHUNK_SIZE));
  return Math.round(((performance.now() - t0) * 1000 * 100) / 16384) / 100;
}

async function benchIndexing() {
  const dir = await mkdtemp(join(tmpdir(), 'cloudlet-delta-bench-'));
  try {
    const file = join(dir, 'disk.raw');
    const chunks = await writeImage(file);
    const results: Record<string, unknown> = {};
    for (const workers of [1, 2]) {
      await indexDiskImage(file, { workers }); // warm-up (and page cache)
      const ms: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t0 = performance.now();
        const index = await indexDiskImage(file, { workers });
        ms.push(performance.now() - t0);
        if (index.count !== IMAGE_BYTES / CHUNK_SIZE) throw new Error(`indexed ${index.count} chunks`);
      }
      results[`workers${workers}`] = {
        runsMs: ms.map(Math.round),
        medianMs: Math.round(median(ms)),
        MBps: Math.round(IMAGE_BYTES / 1e6 / (median(ms) / 1000)),
      };
    }
    return {
      sha256UsPerChunkSingleThread: sha256UsPerChunk(),
      imageBytes: IMAGE_BYTES,
      chunks,
      cache: 'warm (file just written; page cache not dropped)',
      ...results,
      goalMBps: 500,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const which = process.argv[2];
const out: Record<string, unknown> = { node: process.version };
if (which === undefined || which === 'lookup') out.lookup = benchLookup();
if (which === undefined || which === 'indexing') out.indexDiskImage = await benchIndexing();
console.log(JSON.stringify(out, null, 2));
