// Which segment codec and level for overlays (issue 4's size goal against issue 7's synthesis speed): the
// server-app overlay (tiny base, bench workload) is made once, then its records are rewritten with each codec
// and level; per variant the overlay's bytes and the time to read every record back (fetch + sha256 +
// decompress, no apply; median of 3). Run: pnpm exec tsx bench/segment-codecs.ts [overlay.zip | workload]
// (default server-app; prints JSON, ~1 min for server-app, a few for the large-base workloads).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOverlay } from '../packages/overlay-format/dist/index.js';
import { rewriteOverlay } from './lib/rewrite-overlay.js';
import { median } from './lib/stats.js';
import { workloadOverlay } from './lib/workload-overlay.js';

const VARIANTS = [
  ['zstd', 3],
  ['zstd', 6],
  ['zstd', 9],
  ['zstd', 12],
  ['zstd', 19],
  ['xz', 6],
  ['xz', 9],
] as const;

async function readBack(file: string): Promise<number> {
  const started = performance.now();
  const reader = await openOverlay(file);
  for await (const _ of reader.records());
  await reader.close();
  return (performance.now() - started) / 1000;
}

const arg = process.argv[2] ?? 'server-app';
const work = await mkdtemp(join(tmpdir(), 'bench-codecs-'));
try {
  const source = arg.endsWith('.zip') ? arg : await workloadOverlay(work, arg);
  const rows = [];
  for (const [codec, level] of VARIANTS) {
    const file = join(work, `${codec}-${level}.zip`);
    const { bytes, seconds: encodeSeconds } = await rewriteOverlay(source, file, codec, level);
    const reads = [await readBack(file), await readBack(file), await readBack(file)];
    rows.push({ codec, level, bytes, encodeSeconds, readSeconds: median(reads) });
  }
  console.log(JSON.stringify({ overlay: arg, rows }, null, 2));
} finally {
  await rm(work, { recursive: true, force: true });
}
