// Where an overlay's bytes go (issue 4's size goal): its records grouped by space and kind, each group's payload
// compressed on its own (zstd-3, 1 MiB pieces, as segments are), and the raw memory pages told apart by what they
// hold — the server-app's binaries (page cache of the files it installed), the text it generated, other pages.
// Run: pnpm exec tsx bench/overlay-anatomy.ts [overlay.zip | workload]   (a workload's overlay is made first:
// server-app ~1 min, the large-base ones ~2 min; with ANATOMY_KEEP=DIR it is made in DIR and kept)
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOverlay, segmentCodec } from '../packages/overlay-format/dist/index.js';
import { workloadOverlay } from './lib/workload-overlay.js';
import { APP_FILES } from './lib/workloads.js';

const PAGE = 4096;
const PIECE = 1 << 20;
const zstd = segmentCodec('zstd');

const pageHash = (page: Uint8Array) => createHash('sha256').update(page).digest('hex');

/** Hashes of every 4 KiB-aligned page of `bytes` (a file's pages as the page cache holds them). */
function pagesOf(bytes: Uint8Array, into: Set<string>): void {
  for (let at = 0; at < bytes.length; at += PAGE) {
    const page = new Uint8Array(PAGE);
    page.set(bytes.subarray(at, Math.min(at + PAGE, bytes.length)));
    into.add(pageHash(page));
  }
}

async function compressedSize(parts: Uint8Array[]): Promise<number> {
  let total = 0;
  let piece: Uint8Array[] = [];
  let size = 0;
  const flush = async () => {
    if (size === 0) return;
    total += (await zstd.compress(Buffer.concat(piece), 3)).length;
    piece = [];
    size = 0;
  };
  for (const part of parts) {
    piece.push(part);
    size += part.length;
    if (size >= PIECE) await flush();
  }
  await flush();
  return total;
}

interface Group {
  count: number;
  payload: Uint8Array[];
}

async function anatomy(file: string) {
  const appPages = new Set<string>();
  for (const path of APP_FILES) pagesOf(await readFile(path), appPages);
  const seq = Buffer.from(`${Array.from({ length: 200_000 }, (_, i) => i + 1).join('\n')}\n`);
  const textPages = new Set<string>();
  pagesOf(seq, textPages);
  const groups = new Map<string, Group>();
  const add = (key: string, payload?: Uint8Array) => {
    const group = groups.get(key) ?? { count: 0, payload: [] };
    group.count += 1;
    if (payload !== undefined) group.payload.push(payload);
    groups.set(key, group);
  };
  const reader = await openOverlay(file);
  try {
    for await (const record of reader.records()) {
      const { encoding } = record;
      if (encoding.kind === 'raw') {
        const hash = pageHash(encoding.data);
        const what = appPages.has(hash) ? 'app binary' : textPages.has(hash) ? 'generated text' : 'other';
        add(`${record.space} raw: ${what}`, encoding.data);
      } else if (encoding.kind === 'xor' || encoding.kind === 'vcdiff') {
        add(`${record.space} ${encoding.kind}`, encoding.delta);
      } else add(`${record.space} ${encoding.kind}`);
    }
    const rows = [];
    for (const [key, group] of [...groups].sort()) {
      const bytes = group.payload.reduce((n, p) => n + p.length, 0);
      rows.push({
        group: key,
        records: group.count,
        payloadBytes: bytes,
        zstd3: await compressedSize(group.payload),
      });
    }
    const { statistics } = reader.manifest as { statistics?: unknown };
    return { file, rows, statistics };
  } finally {
    await reader.close();
  }
}

const arg = process.argv[2] ?? 'server-app';
const given = arg.endsWith('.zip') ? arg : undefined;
const keep = process.env.ANATOMY_KEEP;
const work = given !== undefined ? undefined : (keep ?? (await mkdtemp(join(tmpdir(), 'bench-anatomy-'))));
try {
  const file = given ?? (await workloadOverlay(work ?? '', arg));
  console.log(JSON.stringify(await anatomy(file), null, 2));
} finally {
  if (work !== undefined && keep === undefined) await rm(work, { recursive: true, force: true });
}
