// Early start against full synthesis over a throttled link (issue 8): `pnpm exec tsx bench/early-start.ts
// [--runs N] [--only server-app,disk-heavy] [--megabits 38]`. Per workload: the overlay made by its scripted
// customization, a copy reordered by access-order profiling, then at the link rate the time from the start of
// synthesis to the app's first answer — full synthesis, early start with the memory applied first, early start
// with the memory on demand (the default), the same of the profiled overlay —
// each in its own process, medians of N, beside the plain transfer time of the overlay over the same link.
// Writes bench/results/early-start-latest.json and the table between the early-start markers of
// docs/benchmarks.md. Goal (reported, not tuned for): early start ≤ 0.3 × full synthesis.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { openBaseRegistry } from '@cloudlet/base-registry';
import { createBase, createOverlay, profileOverlay, runGuestScript, waitForShell } from '@cloudlet/core';
import { type DirectoryServer, mbps, serveDirectory } from '@cloudlet/test-vms';
import { machine } from './lib/machine.js';
import { median } from './lib/stats.js';
import { buildVm } from './lib/vms.js';
import { APP_FILES, WORKLOADS, type Workload } from './lib/workloads.js';

const sh = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const log = (...xs: unknown[]) =>
  console.error(`[early-start ${new Date().toISOString().slice(11, 19)}]`, ...xs);
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    only: { type: 'string', default: 'server-app,disk-heavy,disk-heavy-dropped' },
    megabits: { type: 'string', default: '38' },
    'render-only': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const megabits = Number(values.megabits);
/**
 * A workload with the guest's page cache dropped before the snapshot: the new files then live only in the
 * overlay's disk part (init_on_free=1 zeroes the freed pages), which is what early start can defer.
 */
const dropped = (w: Workload): Workload => ({
  ...w,
  name: `${w.name}-dropped`,
  script: `${w.script}\nsync; echo 3 > /proc/sys/vm/drop_caches`,
});
const EARLY_WORKLOADS = [...WORKLOADS, ...WORKLOADS.map(dropped)];
const chosen = (values.only ?? '').split(',').map((n) => {
  const w = EARLY_WORKLOADS.find((x) => x.name === n);
  if (w === undefined)
    throw new Error(`unknown workload ${n} (have ${EARLY_WORKLOADS.map((x) => x.name).join(', ')})`);
  return w;
});

type Mode = 'full' | 'memory-first' | 'on-demand';

/** One synthesis in its own process (bench/synth-child.ts): seconds to the app's first answer. */
function toAnswer(home: string, overlay: string, expect: string, mode: Mode): Promise<number> {
  return new Promise((resolve, reject) => {
    const early =
      mode === 'full'
        ? {}
        : { earlyStart: true, ...(mode === 'memory-first' ? { earlyStartMemory: 'first' } : {}) };
    const args = JSON.stringify({ home, overlay, expect, guestPort: 80, ...early });
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench/synth-child.ts'), args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{'))
        reject(new Error(`${mode} synthesis of ${overlay} exited ${code}: ${err.slice(-1500)}`));
      else resolve((JSON.parse(line) as { toAnswerSeconds: number }).toAnswerSeconds);
    });
  });
}

async function plainGet(url: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(url);
  for await (const _ of res.body as AsyncIterable<Uint8Array>);
  return (performance.now() - t) / 1000;
}

interface Row {
  workload: string;
  overlayBytes: number;
  touchedChunks: number;
  /** Memory pages of the overlay touched before the answer (profiling, memory on demand). */
  touchedPages?: number;
  transferSeconds: number;
  full: number;
  /** Early start with the memory applied before resuming (what `early` was before memory on demand). */
  earlyMemoryFirst?: number;
  early: number;
  earlyProfiled: number;
}

async function benchWorkload(
  w: Workload,
  work: string,
  files: string,
  server: DirectoryServer,
): Promise<Row> {
  const home = join(work, `home-${w.name}`);
  const registry = await openBaseRegistry({ home });
  try {
    log(w.name, `base (${w.base})`);
    const { base } = await createBase({
      registry,
      ...(await buildVm(w.base)),
      prepare: (v) => waitForShell(v),
    });
    const appUrl = server.url.replace('127.0.0.1', '10.0.2.2');
    const plain = join(files, `${w.name}.zip`);
    log(w.name, 'overlay');
    server.setRate(Number.POSITIVE_INFINITY);
    await createOverlay({
      registry,
      base: base.id,
      output: plain,
      qemuArgs: ['-redir', 'tcp:0::80'],
      prepare: (vm) => runGuestScript(vm, w.script.replaceAll('@APP@', appUrl), { timeoutMs: 900_000 }),
    });
    const profiled = join(files, `${w.name}-profiled.zip`);
    await copyFile(plain, profiled);
    log(w.name, 'profile');
    const profile = await profileOverlay({
      registry,
      overlay: profiled,
      portForwards: [{ guestPort: 80 }],
      until: async (vm) => {
        const url = `http://127.0.0.1:${vm.vm.hostPort(80)}/`;
        for (;;) {
          const ok = await fetch(url, { signal: AbortSignal.timeout(5000) }).then(
            (r) => r.ok,
            () => false,
          );
          if (ok) return;
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    });
    server.setRate(mbps(megabits));
    const t = {
      full: [] as number[],
      earlyMemoryFirst: [] as number[],
      early: [] as number[],
      earlyProfiled: [] as number[],
      get: [] as number[],
    };
    for (let r = 0; r < runs; r++) {
      log(w.name, `${megabits} Mbps run ${r + 1}/${runs}`);
      t.get.push(await plainGet(`${server.url}/${w.name}.zip`));
      const plainUrl = `${server.url}/${w.name}.zip`;
      t.full.push(await toAnswer(home, plainUrl, w.expect, 'full'));
      t.earlyMemoryFirst.push(await toAnswer(home, plainUrl, w.expect, 'memory-first'));
      t.early.push(await toAnswer(home, plainUrl, w.expect, 'on-demand'));
      t.earlyProfiled.push(
        await toAnswer(home, `${server.url}/${w.name}-profiled.zip`, w.expect, 'on-demand'),
      );
    }
    server.setRate(Number.POSITIVE_INFINITY);
    return {
      workload: w.name,
      overlayBytes: (await stat(plain)).size,
      touchedChunks: profile.touched.length,
      touchedPages: profile.memoryTouched.length,
      transferSeconds: median(t.get),
      full: median(t.full),
      earlyMemoryFirst: median(t.earlyMemoryFirst),
      early: median(t.early),
      earlyProfiled: median(t.earlyProfiled),
    };
  } finally {
    registry.close();
  }
}

const BEGIN = '<!-- early-start:begin (generated by bench/early-start.ts) -->';
const END = '<!-- early-start:end -->';

function render(rows: Row[], date: string, load: string): string {
  const f = (x: number) => x.toFixed(2);
  const lines = [
    BEGIN,
    `Run of ${date.slice(0, 10)}, ${runs} runs per cell (medians), link ${megabits} Mbit/s through the bench's token-bucket`,
    `Range server; load average at the start ${load}. Times from the start of synthesis to the app's first answer.`,
    '',
    '| workload | overlay | transfer | full synthesis | early, memory first | early start | early start, profiled | memory first / full | early / full | profiled / full | goal ≤ 0.3 |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const first = r.earlyMemoryFirst === undefined ? '–' : `${f(r.earlyMemoryFirst)} s`;
      const firstRatio = r.earlyMemoryFirst === undefined ? '–' : f(r.earlyMemoryFirst / r.full);
      const pages = r.touchedPages === undefined ? '' : `${r.touchedPages} pages, `;
      return (
        `| ${r.workload} | ${(r.overlayBytes / 1e6).toFixed(1)} MB | ${f(r.transferSeconds)} s | ${f(r.full)} s | ${first} | ${f(r.early)} s | ` +
        `${f(r.earlyProfiled)} s (${pages}${r.touchedChunks} chunks first) | ${firstRatio} | ${f(r.early / r.full)} | ${f(r.earlyProfiled / r.full)} | ` +
        `${Math.min(r.early, r.earlyProfiled) / r.full <= 0.3 ? 'met' : 'not met'} |`
      );
    }),
    '',
    "`early start` = the default: the guest's RAM is a file on cloudletfs that QEMU maps (memory-backend-file +",
    'x-ignore-shared), so the VM resumes before the memory has arrived and pages are fetched as it faults on them;',
    '`early, memory first` = `--memory-first`: all memory segments before resuming, only the disk deferred — it gains',
    "little when the overlay is mostly memory, as a freshly written file is (it sits in the guest's page cache:",
    '`server-app`, `disk-heavy`). `-dropped` = the page cache dropped before the snapshot (init_on_free=1 zeroes the',
    'freed pages), so the new files live in the disk part. `profiled` = the overlay reordered by',
    '`cloudlet overlay --profile` (touched pages and chunks first).',
    END,
  ];
  return lines.join('\n');
}

/** Regenerates the docs table from bench/results/early-start-latest.json (no VM runs). */
async function renderOnly() {
  const saved = JSON.parse(await readFile(join(root, 'bench/results/early-start-latest.json'), 'utf8')) as {
    date: string;
    rows: Row[];
    machine: { loadAverage: number[] };
  };
  await writeDocs(
    render(saved.rows, saved.date, saved.machine.loadAverage.map((x) => x.toFixed(2)).join(' ')),
  );
}

async function writeDocs(table: string) {
  const doc = join(root, 'docs/benchmarks.md');
  const text = await readFile(doc, 'utf8');
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  const next =
    i >= 0 && j > i
      ? `${text.slice(0, i)}${table}${text.slice(j + END.length)}`
      : `${text.trimEnd()}\n\n## Early start over a throttled link\n\n${table}\n`;
  await writeFile(doc, next);
  console.log(table);
}

async function main() {
  const m = machine();
  const work = await mkdtemp(join(tmpdir(), 'cloudlet-early-'));
  const files = join(work, 'files');
  mkdirSync(files);
  await sh('tar', ['-cf', join(files, 'app.tar'), '--transform', 's,.*/,,', ...APP_FILES]);
  const server = await serveDirectory(files);
  try {
    const rows: Row[] = [];
    for (const w of chosen) rows.push(await benchWorkload(w, work, files, server));
    // Rows of workloads not run this time are kept from the last results file (an earlier run; see its date).
    const previous = await readFile(join(root, 'bench/results/early-start-latest.json'), 'utf8')
      .then((t) => (JSON.parse(t) as { rows: Row[] }).rows)
      .catch(() => [] as Row[]);
    for (const old of previous) if (!rows.some((r) => r.workload === old.workload)) rows.push(old);
    const date = new Date().toISOString();
    const result = { date, megabits, runs, machine: m, rows };
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    const out = join(root, 'bench/results/early-start-latest.json');
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    await sh(join(root, 'node_modules/.bin/biome'), ['format', '--write', out]).catch(() => {});
    await writeDocs(render(rows, date, m.loadAverage.map((x) => x.toFixed(2)).join(' ')));
  } finally {
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
}

await (values['render-only'] === true ? renderOnly() : main());
