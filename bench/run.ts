// The end-to-end benchmark (issue 7): `pnpm bench [--runs N] [--only a,b] [--quick]`.
// For each workload: overlays made by the scripted customization (ours, and B3 = each optimization off),
// B1/B2 baselines on the first run's custom VM, synthesis from the file and over throttled HTTP links (each in
// a child process, to the app answering), decompress-only, a plain GET through the throttle; then the base
// index memory. Writes bench/results/<date>.json + latest.json and regenerates docs/benchmarks.md's tables.
// Needs the test VMs (built here if missing), QEMU, xz, xdelta3. Not part of `pnpm test`: it takes a while.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { type BaseRegistry, openBaseRegistry } from '@cloudlet/base-registry';
import {
  type CreateOverlayOptions,
  createBase,
  createOverlay,
  runGuestScript,
  waitForShell,
} from '@cloudlet/core';
import { type DirectoryServer, mbps, serveDirectory } from '@cloudlet/test-vms';
import { createDedupLookup } from '../packages/delta/dist/index.js';
import { openOverlay } from '../packages/overlay-format/dist/index.js';
import { computeBaselines } from './lib/baselines.js';
import { machine, versions } from './lib/machine.js';
import { renderResults, replaceGenerated } from './lib/report.js';
import type {
  Baseline,
  BenchResults,
  CreationRun,
  LinkResult,
  SynthesisRun,
  WorkloadResult,
} from './lib/results.js';
import { median, medianOf } from './lib/stats.js';
import { buildVm } from './lib/vms.js';
import { APP_FILES, type BaseName, selectWorkloads, type Workload } from './lib/workloads.js';

const sh = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const log = (...xs: unknown[]) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...xs);

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    // Default: as many as --runs, so every row is a median of the same number of runs (the issue asks ≥ 3).
    'variant-runs': { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    render: { type: 'boolean', default: false },
  },
});
if (values.render === true) {
  // Only regenerate docs/benchmarks.md's tables from bench/results/latest.json (no measurement).
  const latest = JSON.parse(await readFile(join(root, 'bench/results/latest.json'), 'utf8')) as BenchResults;
  const doc = join(root, 'docs/benchmarks.md');
  await writeFile(doc, replaceGenerated(await readFile(doc, 'utf8'), renderResults(latest)));
  process.exit(0);
}
const quick = values.quick === true;
const runs = quick ? 1 : Number(values.runs);
const variantRuns = quick ? 1 : Math.min(runs, Number(values['variant-runs'] ?? runs));
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${values.runs}`);
const only = values.only?.split(',').filter((s) => s !== '');
const workloads = selectWorkloads(only, quick);
if (workloads.length === 0) throw new Error('no workload selected');
const LINKS = [38, 100];

function cpuSeconds(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
}

function sizes(summary: {
  bytes: number;
  manifest: {
    segments: readonly { space: string; compressedBytes: number }[];
    blobs: readonly { compressedBytes: number }[];
  };
}) {
  const seg = (space: string) =>
    summary.manifest.segments.filter((s) => s.space === space).reduce((n, s) => n + s.compressedBytes, 0);
  const blobs = summary.manifest.blobs.reduce((n, b) => n + b.compressedBytes, 0);
  return { bytes: summary.bytes, diskBytes: seg('disk'), memoryBytes: seg('memory') + blobs };
}

/** One createOverlay with the workload's script; phase times from its progress events. */
async function makeOverlay(
  registry: BaseRegistry,
  baseId: string,
  w: Workload,
  appUrl: string,
  output: string,
  extra: Partial<CreateOverlayOptions>,
): Promise<{ run: CreationRun; kinds: Record<string, { count: number; bytes: number }> }> {
  const marks: Record<string, number> = {};
  const chunks: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await createOverlay({
    registry,
    base: baseId,
    output,
    qemuArgs: ['-redir', 'tcp:0::80'],
    prepare: (vm) => runGuestScript(vm, w.script.replaceAll('@APP@', appUrl), { timeoutMs: 900_000 }),
    onProgress: (p) => {
      marks[p.stage] ??= performance.now();
      if (p.chunks !== undefined) chunks[p.stage] = p.chunks;
    },
    ...extra,
  });
  const end = performance.now();
  const s = (a: number | undefined, b: number | undefined) => ((b ?? Number.NaN) - (a ?? Number.NaN)) / 1000;
  const encodeSeconds = s(marks.memory, end);
  const run: CreationRun = {
    ...sizes(result.summary),
    wallSeconds: (end - t0) / 1000,
    cpuSeconds: cpuSeconds(cpu0),
    guestScriptSeconds: s(marks.prepare, marks.memory),
    encodeSeconds,
    memoryPhaseSeconds: s(marks.memory, marks.disk),
    diskPhaseSeconds: s(marks.disk, end),
    changedBytes: result.stats.inputBytes,
    changedMemoryPages: chunks.memory ?? Number.NaN,
    changedDiskChunks: chunks.disk ?? Number.NaN,
    throughputMBps: result.stats.inputBytes / 1e6 / encodeSeconds,
  };
  return { run, kinds: result.stats.byKind };
}

function synthesisChild(home: string, overlay: string, expect: string): Promise<SynthesisRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'bench/synth-child.ts'),
        JSON.stringify({ home, overlay, expect, guestPort: 80 }),
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{'))
        reject(new Error(`synthesis child exited ${code}: ${err.slice(-2000)}`));
      else resolve(JSON.parse(line) as SynthesisRun);
    });
  });
}

async function decompressOnly(file: string): Promise<number> {
  const t = performance.now();
  const reader = await openOverlay(file);
  let n = 0;
  for await (const _ of reader.records()) n++;
  await reader.close();
  if (n === 0) throw new Error('no records');
  return (performance.now() - t) / 1000;
}

async function plainGet(url: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(url);
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) bytes += chunk.length;
  if (!res.ok || bytes === 0) throw new Error(`GET ${url}: ${res.status}`);
  return (performance.now() - t) / 1000;
}

/** B1 and B2 of the custom VM a createOverlay left (its folder `customDir`, its snapshot copy); then removed. */
async function baselinesOf(work: string, customDir: string, base: { disk: string; memory: string }) {
  const baselines = await computeBaselines({
    work,
    qcow2: join(customDir, 'disk.qcow2'),
    snapshot: join(work, 'custom.snap'),
    baseDisk: base.disk,
    baseMemory: base.memory,
  });
  await rm(customDir, { recursive: true, force: true });
  const scratch = ['custom.snap', 'custom.raw', 'b1-disk.xz', 'b1-mem.xz'];
  for (const f of [...scratch, 'b2-disk.vcdiff', 'b2-mem.vcdiff', 'b2-disk.xz', 'b2-mem.xz'])
    await rm(join(work, f), { force: true });
  return baselines;
}

/**
 * The paper's baseline: the workload on the base booted without init_on_free=1 and without its fstrim, so the
 * guest itself leaves freed pages and deleted blocks in place; B2 of that custom VM.
 */
async function unoptimizedB2(
  noFree: { registry: BaseRegistry; id: string },
  w: Workload,
  appUrl: string,
  work: string,
): Promise<Baseline> {
  const untrimmed = { ...w, script: w.script.replaceAll(/\s*&&\s*fstrim \S+/g, '') };
  let customDir = '';
  const out = join(work, `${w.name}-unoptimized.zip`);
  await makeOverlay(noFree.registry, noFree.id, untrimmed, appUrl, out, {
    registry: noFree.registry,
    base: noFree.id,
    memorySnapshotCopy: join(work, 'custom.snap'),
    keepWorkDir: (dir: string) => (customDir = dir),
  });
  await rm(out, { force: true });
  const noFreeBase = noFree.registry.get(noFree.id);
  const paths = { disk: noFreeBase.paths.disk, memory: noFreeBase.paths.memory };
  return (await baselinesOf(work, customDir, paths)).B2;
}

async function benchWorkload(
  registry: BaseRegistry,
  baseId: string,
  base: { disk: string; memory: string },
  w: Workload,
  server: DirectoryServer,
  files: string,
  work: string,
  noFree: { registry: BaseRegistry; id: string },
): Promise<WorkloadResult> {
  const appUrl = server.url.replace('127.0.0.1', '10.0.2.2');
  const overlayFile = join(files, `${w.name}.zip`);
  server.setRate(Number.POSITIVE_INFINITY);
  const oursRuns: CreationRun[] = [];
  let kinds: Record<string, { count: number; bytes: number }> = {};
  let baselines: WorkloadResult['baselines'] | undefined;
  for (let r = 0; r < runs; r++) {
    log(w.name, `ours run ${r + 1}/${runs}`);
    const first = r === 0;
    let customDir = '';
    const out = first ? overlayFile : join(work, `${w.name}-${r}.zip`);
    const made = await makeOverlay(registry, baseId, w, appUrl, out, {
      ...(first
        ? { memorySnapshotCopy: join(work, 'custom.snap'), keepWorkDir: (dir: string) => (customDir = dir) }
        : {}),
    });
    oursRuns.push(made.run);
    log(w.name, `ours ${made.run.bytes} bytes, ${made.run.wallSeconds.toFixed(1)} s`);
    if (first) {
      kinds = made.kinds;
      log(w.name, 'baselines B1, B2');
      baselines = await baselinesOf(work, customDir, base);
      log(w.name, `B1 ${baselines.B1.bytes}, B2 ${baselines.B2.bytes}`);
    } else await rm(out, { force: true });
  }
  if (baselines === undefined) throw new Error('no baselines');
  log(w.name, 'B2 on an unoptimized guest (no init_on_free, no fstrim)');
  baselines = { ...baselines, B2unoptimized: await unoptimizedB2(noFree, w, appUrl, work) };
  log(w.name, `B2 unoptimized ${baselines.B2unoptimized?.bytes}`);
  const variants: WorkloadResult['variants'] = {};
  const offs: [string, Partial<CreateOverlayOptions>][] = [
    ['dedup off', { dedup: false }],
    ['delta off', { delta: 'none' }],
    ['trim off', { trim: false }],
    // The same base booted without init_on_free=1 (a second registry: the id is the disk's hash).
    ['free memory off', { registry: noFree.registry, base: noFree.id }],
  ];
  for (const [name, extra] of offs) {
    const vr: CreationRun[] = [];
    for (let r = 0; r < variantRuns; r++) {
      log(w.name, `${name} run ${r + 1}/${variantRuns}`);
      const out = join(work, `${w.name}-variant.zip`);
      vr.push((await makeOverlay(registry, baseId, w, appUrl, out, extra)).run);
      await rm(out, { force: true });
    }
    variants[name] = { runs: vr, median: medianOf(vr) };
  }
  log(w.name, 'ours with --codec xz');
  const xzFile = join(work, `${w.name}-xz.zip`);
  const xzRun = (await makeOverlay(registry, baseId, w, appUrl, xzFile, { codec: 'xz' })).run;
  const oursXz = {
    bytes: xzRun.bytes,
    seconds: xzRun.wallSeconds,
    decompressOnlySeconds: await decompressOnly(xzFile),
  };
  await rm(xzFile, { force: true });
  log(w.name, `ours --codec xz ${oursXz.bytes} bytes`);
  const local: SynthesisRun[] = [];
  const decompress: number[] = [];
  for (let r = 0; r < runs; r++) {
    log(w.name, `synthesis (file) ${r + 1}/${runs}`);
    local.push(await synthesisChild(registry.home, overlayFile, w.expect));
    decompress.push(await decompressOnly(overlayFile));
  }
  const links: LinkResult[] = [];
  for (const megabits of LINKS) {
    server.setRate(mbps(megabits));
    const synth: SynthesisRun[] = [];
    const gets: number[] = [];
    for (let r = 0; r < runs; r++) {
      log(w.name, `${megabits} Mbps: GET + synthesis ${r + 1}/${runs}`);
      gets.push(await plainGet(`${server.url}/${w.name}.zip`));
      synth.push(await synthesisChild(registry.home, `${server.url}/${w.name}.zip`, w.expect));
    }
    links.push({
      megabits,
      synthesis: { runs: synth, median: medianOf(synth) },
      transferSeconds: median(gets),
    });
  }
  server.setRate(Number.POSITIVE_INFINITY);
  return {
    name: w.name,
    base: w.base,
    description: w.description,
    ours: { runs: oursRuns, median: medianOf(oursRuns) },
    variants,
    baselines,
    oursXz,
    synthesisLocal: { runs: local, median: medianOf(local) },
    decompressOnlySeconds: median(decompress),
    links,
    encoderKinds: kinds,
  };
}

async function deltaIndexBench(): Promise<BenchResults['deltaIndex']> {
  log('bench/delta-index.ts lookup');
  const { stdout } = await sh(
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/delta-index.ts'), 'lookup'],
    {
      cwd: root,
      maxBuffer: 1 << 22,
    },
  );
  const out = JSON.parse(stdout) as {
    lookup?: { memoryBytes: number; lookupsPerSec?: { median: number }; goals?: { memoryBytes: number } };
  };
  const l = out.lookup;
  if (l === undefined) return undefined;
  return {
    lookupMB: l.memoryBytes / 1e6,
    boundMB: (l.goals?.memoryBytes ?? 128e6) / 1e6,
    ...(l.lookupsPerSec === undefined ? {} : { lookupsPerSecond: l.lookupsPerSec.median }),
  };
}

async function main() {
  const started = performance.now();
  const m0 = machine();
  log(
    `workloads: ${workloads.map((w) => w.name).join(', ')}; runs ${runs}; load ${m0.loadAverage.map((x) => x.toFixed(2)).join(' ')}`,
  );
  const work = await mkdtemp(join(tmpdir(), 'cloudlet-bench-'));
  const files = join(work, 'files');
  mkdirSync(files);
  await sh('tar', ['-cf', join(files, 'app.tar'), '--transform', 's,.*/,,', ...APP_FILES]);
  const server = await serveDirectory(files);
  const registry = await openBaseRegistry({ home: join(work, 'home') });
  const noFreeRegistry = await openBaseRegistry({ home: join(work, 'home-no-free') });
  const results: WorkloadResult[] = [];
  const baseIndexes: NonNullable<BenchResults['baseIndexes']> = {};
  try {
    const bases = new Map<BaseName, { id: string; disk: string; memory: string; noFreeId: string }>();
    for (const name of new Set(workloads.map((w) => w.base))) {
      log(`building/registering the ${name} base`);
      const vm = await buildVm(name);
      const { base } = await createBase({
        registry,
        ...vm,
        label: `bench-${name}`,
        prepare: (v) => waitForShell(v),
      });
      const { base: noFreeBase } = await createBase({
        registry: noFreeRegistry,
        ...vm,
        append: vm.append.replace(/\s*\binit_on_free=1\b/, ''),
        label: `bench-${name}-no-free`,
        prepare: (v) => waitForShell(v),
      });
      bases.set(name, {
        id: base.id,
        disk: base.paths.disk,
        memory: base.paths.memory,
        noFreeId: noFreeBase.id,
      });
      const lookup = createDedupLookup(await registry.openIndexes(base.id));
      baseIndexes[name] = {
        lookupMB: lookup.memoryBytes / 1e6,
        chunks: base.memoryPages + Math.ceil(base.diskBytes / 4096),
      };
    }
    for (const w of workloads) {
      const b = bases.get(w.base);
      if (b === undefined) throw new Error(`no ${w.base} base`);
      results.push(
        await benchWorkload(registry, b.id, b, w, server, files, work, {
          registry: noFreeRegistry,
          id: b.noFreeId,
        }),
      );
    }
    const deltaIndex = quick ? undefined : await deltaIndexBench();
    const m1 = machine();
    const date = new Date().toISOString();
    const out: BenchResults = {
      schema: 1,
      date,
      options: { runs, ...(only === undefined ? {} : { only }), quick },
      machine: {
        nproc: m0.nproc,
        cpu: m0.cpu,
        ramBytes: m0.ramBytes,
        kernel: m0.kernel,
        loadAverageStart: m0.loadAverage,
        loadAverageEnd: m1.loadAverage,
      },
      versions: await versions(),
      durationSeconds: (performance.now() - started) / 1000,
      workloads: results,
      ...(deltaIndex === undefined ? {} : { deltaIndex }),
      baseIndexes,
    };
    const dir = join(root, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const json = `${JSON.stringify(out, null, 2)}\n`;
    const stamp = date.replace(/:/g, '-').replace(/\..*$/, '');
    await writeFile(join(dir, `${stamp}${quick ? '-quick' : ''}.json`), json);
    const written = [join(dir, `${stamp}${quick ? '-quick' : ''}.json`)];
    if (!quick) {
      await writeFile(join(dir, 'latest.json'), json);
      written.push(join(dir, 'latest.json'));
    }
    // In the repository's JSON style (biome check covers bench/results).
    await sh(join(root, 'node_modules/.bin/biome'), ['format', '--write', ...written]).catch(() => {});
    const md = renderResults(out);
    if (!quick && values['no-docs'] !== true) {
      const doc = join(root, 'docs/benchmarks.md');
      await writeFile(doc, replaceGenerated(await readFile(doc, 'utf8'), md));
      log('docs/benchmarks.md regenerated');
    }
    console.log(md);
  } finally {
    registry.close();
    noFreeRegistry.close();
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
