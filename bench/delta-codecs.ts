// Benchmarks of @cloudlet/delta's per-chunk delta codecs. Run: pnpm exec tsx bench/delta-codecs.ts
// (prints JSON). For each mutation of realistic 4 KiB pages — sparse (8 bytes flipped), cluster (one
// 128-byte run rewritten + 4 flips), shift (16 bytes inserted, the tail moves) — µs per chunk to
// encode and decode, and mean delta bytes, per codec and for the encoder's smallest-wins selector
// (both codecs tried, smallest kept if < 3/4 of the chunk). Median of 3 runs; every round trip is
// checked. Same mutations as dependency-notes §3, so the numbers compare.
import { randomBytes } from 'node:crypto';
import {
  CHUNK_SIZE,
  createChunkEncoder,
  createDedupLookup,
  createDeltaCodecs,
  type DeltaCodec,
  decodeChunk,
} from '../packages/delta/src/index.js';

const PAGES = 2000;
const RUNS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/**
 * Page shapes seen in VM memory and disk: text (ASCII lines), pointer-rich heap/page-table data
 * (8-byte little-endian values with zero high bytes), small integer arrays, and compressed or
 * encrypted data (random bytes). A quarter each.
 */
function realisticPage(k: number): Uint8Array {
  const page = new Uint8Array(CHUNK_SIZE);
  const rnd = randomBytes(CHUNK_SIZE);
  switch (k % 4) {
    case 0: {
      const words = [
        'the ',
        'kernel ',
        'page ',
        'cache ',
        'overlay ',
        'VM ',
        'base ',
        'chunk\n',
        'delta ',
        'synthesis ',
      ];
      for (let at = 0, r = 0; at < CHUNK_SIZE; r++) {
        const w = Buffer.from(words[(rnd[r % CHUNK_SIZE] as number) % words.length] as string);
        page.set(w.subarray(0, CHUNK_SIZE - at), at);
        at += w.length;
      }
      break;
    }
    case 1:
      for (let at = 0; at < CHUNK_SIZE; at += 8) {
        page[at] = (rnd[at] as number) & 0xf8;
        page[at + 1] = rnd[at + 1] as number;
        page[at + 2] = rnd[at + 2] as number;
        page[at + 3] = 0x8a;
        page[at + 4] = 0xff;
        page[at + 5] = 0xff;
        page[at + 6] = 0xff;
        page[at + 7] = 0xff;
      }
      break;
    case 2:
      for (let at = 0; at < CHUNK_SIZE; at += 4) page[at] = (rnd[at] as number) & 0x1f;
      break;
    default:
      page.set(rnd);
  }
  return page;
}

type Mutation = 'sparse' | 'cluster' | 'shift';

function mutate(source: Uint8Array, m: Mutation): Uint8Array {
  const target = Uint8Array.from(source);
  const r = randomBytes(256);
  const at = (i: number) => ((r[i] as number) * 256 + (r[i + 1] as number)) % CHUNK_SIZE;
  if (m === 'sparse') {
    for (let i = 0; i < 8; i++)
      target[at(2 * i)] = (target[at(2 * i)] as number) ^ ((r[100 + i] as number) | 1);
  } else if (m === 'cluster') {
    target.set(randomBytes(128), at(0) % (CHUNK_SIZE - 128));
    for (let i = 1; i <= 4; i++)
      target[at(2 * i)] = (target[at(2 * i)] as number) ^ ((r[100 + i] as number) | 1);
  } else {
    const p = at(0) % (CHUNK_SIZE - 16);
    target.set(randomBytes(16), p);
    target.set(source.subarray(p, CHUNK_SIZE - 16), p + 16);
  }
  return target;
}

interface Row {
  encodeUs: number;
  decodeUs: number;
  meanDeltaBytes: number;
}

function measureCodec(codec: DeltaCodec, pairs: [Uint8Array, Uint8Array][]): Row {
  const t0 = performance.now();
  const deltas = pairs.map(([target, source]) => codec.encode(target, source));
  const t1 = performance.now();
  const decoded = deltas.map((d, i) => codec.decode(d, (pairs[i] as [Uint8Array, Uint8Array])[1]));
  const t2 = performance.now();
  decoded.forEach((out, i) => {
    if (Buffer.compare(out, (pairs[i] as [Uint8Array, Uint8Array])[0]) !== 0)
      throw new Error(`${codec.name} round trip ${i}`);
  });
  const bytes = deltas.reduce((s, d) => s + d.length, 0);
  return {
    encodeUs: ((t1 - t0) * 1000) / pairs.length,
    decodeUs: ((t2 - t1) * 1000) / pairs.length,
    meanDeltaBytes: bytes / pairs.length,
  };
}

const codecs = await createDeltaCodecs();
const emptyLookup = createDedupLookup({});

function measureSelector(pairs: [Uint8Array, Uint8Array][]): Row & { wins: Record<string, number> } {
  const encoder = createChunkEncoder({ lookup: emptyLookup, codecs });
  const t0 = performance.now();
  const encodings = pairs.map(([target, source], i) =>
    encoder.encode({ space: 'memory', index: i }, target, source),
  );
  const t1 = performance.now();
  const decoded = encodings.map((e, i) =>
    decodeChunk(
      e,
      {
        baseMemoryPage: () => {
          throw new Error('unused');
        },
        baseDiskChunk: () => {
          throw new Error('unused');
        },
        overlayChunk: () => {
          throw new Error('unused');
        },
        sameplaceBase: () => (pairs[i] as [Uint8Array, Uint8Array])[1],
      },
      codecs,
    ),
  );
  const t2 = performance.now();
  decoded.forEach((out, i) => {
    if (Buffer.compare(out, (pairs[i] as [Uint8Array, Uint8Array])[0]) !== 0)
      throw new Error(`selector round trip ${i}`);
  });
  const s = encoder.stats();
  return {
    encodeUs: ((t1 - t0) * 1000) / pairs.length,
    decodeUs: ((t2 - t1) * 1000) / pairs.length,
    meanDeltaBytes: s.payloadBytes / pairs.length,
    wins: {
      xor: s.byKind.xor.count,
      vcdiff: s.byKind.vcdiff.count,
      raw: s.byKind.raw.count,
      self: s.byKind.self.count,
    },
  };
}

const round = (row: Row) => ({
  encodeUs: Math.round(row.encodeUs * 10) / 10,
  decodeUs: Math.round(row.decodeUs * 10) / 10,
  meanDeltaBytes: Math.round(row.meanDeltaBytes),
});

const sources = Array.from({ length: PAGES }, (_, k) => realisticPage(k));
const results: Record<string, Record<string, unknown>> = {};
for (const m of ['sparse', 'cluster', 'shift'] as const) {
  const pairs = sources.map((s): [Uint8Array, Uint8Array] => [mutate(s, m), s]);
  const rows: Record<string, Row[]> = { xor: [], vcdiff: [], selector: [] };
  let wins: Record<string, number> = {};
  // Warm-up: let the JIT compile the hot loops before anything is timed.
  measureCodec(codecs.xor, pairs.slice(0, 500));
  measureCodec(codecs.vcdiff, pairs.slice(0, 500));
  measureSelector(pairs.slice(0, 500));
  for (let run = 0; run < RUNS; run++) {
    rows.xor?.push(measureCodec(codecs.xor, pairs));
    rows.vcdiff?.push(measureCodec(codecs.vcdiff, pairs));
    const sel = measureSelector(pairs);
    wins = sel.wins;
    rows.selector?.push(sel);
  }
  results[m] = Object.fromEntries(
    Object.entries(rows).map(([name, rs]) => [
      name,
      round({
        encodeUs: median(rs.map((r) => r.encodeUs)),
        decodeUs: median(rs.map((r) => r.decodeUs)),
        meanDeltaBytes: median(rs.map((r) => r.meanDeltaBytes)),
      }),
    ]),
  );
  (results[m] as Record<string, unknown>).selectorWins = wins;
}

console.log(
  JSON.stringify(
    {
      node: process.version,
      pages: PAGES,
      runs: RUNS,
      chunkBytes: CHUNK_SIZE,
      pageMix: 'text/pointers/small ints/random, 1/4 each',
      results,
    },
    null,
    2,
  ),
);
