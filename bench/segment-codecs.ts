// Which segment codec and level for overlays (issue 4's size goal against issue 7's synthesis speed): the
// server-app overlay (tiny base, bench workload) is made once, then its records are rewritten with each codec
// and level; per variant the overlay's bytes and the time to read every record back (fetch + sha256 +
// decompress, no apply; median of 3). Run: pnpm exec tsx bench/segment-codecs.ts  (prints JSON, ~1 min).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openBaseRegistry } from '@cloudlet/base-registry';
import { createBase, createOverlay, runGuestScript, waitForShell } from '@cloudlet/core';
import { serveDirectory } from '@cloudlet/test-vms';
import {
  createOverlayWriter,
  type OverlayRecord,
  openOverlay,
  segmentCodec,
} from '../packages/overlay-format/dist/index.js';
import { median } from './lib/stats.js';
import { buildVm } from './lib/vms.js';
import { APP_FILES, WORKLOADS } from './lib/workloads.js';

const VARIANTS = [
  ['zstd', 3],
  ['zstd', 9],
  ['zstd', 19],
  ['xz', 6],
  ['xz', 9],
] as const;

async function serverAppOverlay(work: string): Promise<string> {
  const workload = WORKLOADS.find((w) => w.name === 'server-app');
  if (workload === undefined) throw new Error('no server-app workload');
  const files = join(work, 'files');
  await mkdir(files);
  await promisify(execFile)('tar', ['-cf', join(files, 'app.tar'), '--transform', 's,.*/,,', ...APP_FILES]);
  const server = await serveDirectory(files);
  const registry = await openBaseRegistry({ home: join(work, 'home') });
  try {
    const vm = await buildVm(workload.base);
    const { base } = await createBase({ registry, ...vm, prepare: (v) => waitForShell(v) });
    const output = join(work, 'server-app.zip');
    const appUrl = server.url.replace('127.0.0.1', '10.0.2.2');
    await createOverlay({
      registry,
      base: base.id,
      output,
      qemuArgs: ['-redir', 'tcp:0::80'],
      prepare: (v) => runGuestScript(v, workload.script.replaceAll('@APP@', appUrl)),
    });
    return output;
  } finally {
    registry.close();
    await server.close();
  }
}

/** The overlay's records and blobs, rewritten into `file` with another codec; seconds (read + encode). */
async function rewrite(source: string, file: string, codec: 'zstd' | 'xz', level: number) {
  const reader = await openOverlay(source);
  try {
    const { manifest } = reader;
    const started = performance.now();
    const writer = createOverlayWriter({ file, codec: segmentCodec(codec), level });
    for await (const record of reader.records()) await writer.add(record as OverlayRecord);
    for (const blob of manifest.blobs) await writer.addBlob(blob.name, await reader.readBlob(blob.name));
    await writer.finish({ base: manifest.base, vm: manifest.vm, createdAt: manifest.createdAt });
    return (performance.now() - started) / 1000;
  } finally {
    await reader.close();
  }
}

async function readBack(file: string): Promise<number> {
  const started = performance.now();
  const reader = await openOverlay(file);
  for await (const _ of reader.records());
  await reader.close();
  return (performance.now() - started) / 1000;
}

const work = await mkdtemp(join(tmpdir(), 'bench-codecs-'));
try {
  const source = await serverAppOverlay(work);
  const rows = [];
  for (const [codec, level] of VARIANTS) {
    const file = join(work, `${codec}-${level}.zip`);
    const encodeSeconds = await rewrite(source, file, codec, level);
    const reads = [await readBack(file), await readBack(file), await readBack(file)];
    rows.push({ codec, level, bytes: (await stat(file)).size, encodeSeconds, readSeconds: median(reads) });
  }
  console.log(JSON.stringify({ workload: 'server-app', rows }, null, 2));
} finally {
  await rm(work, { recursive: true, force: true });
}
