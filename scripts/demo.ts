// The README demo, the whole flow of VM synthesis on two cloudlets in one machine:
//   1. cloudlet A makes a base VM from the tiny test VM and exports it; cloudlet B imports it (once, ahead);
//   2. A developer customizes the base by script (shell variable, tmpfs file, counter, disk file, httpd) and
//      captures only the difference: the VM overlay;
//   3. B synthesizes the overlay: rebuilds the customized VM from its copy of the base and resumes it;
//   4. every piece of state is there and the server answers through its forwarded port.
// Run: `pnpm demo` (after `bash scripts/quickstart.sh setup`). Exits non-zero if any check fails.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBaseRegistry } from '@cloudlet/base-registry';
import { createBase, createOverlay, type SynthesizedVm, synthesize, waitForShell } from '@cloudlet/core';
import {
  fetchStatePage,
  GUEST_HTTP_PORT,
  type GuestState,
  giveGuestState,
  readGuestState,
  sampleCounter,
  tinyVm,
} from '@cloudlet/test-vms';

const started = performance.now();
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;
const step = (text: string, command: string) =>
  console.log(`\n\x1b[1m${text}\x1b[0m\n  \x1b[2m$ ${command}\x1b[0m`);
let failures = 0;
function check(label: string, ok: boolean, detail: string) {
  if (!ok) failures++;
  console.log(`  ${ok ? '\x1b[32m✓\x1b[0m' : '\x1b[31m✗\x1b[0m'} ${label.padEnd(24)} ${detail}`);
}

async function main() {
  const tiny = tinyVm();
  const work = await mkdtemp(join(tmpdir(), 'cloudlet-demo-'));
  const cloudletA = await openBaseRegistry({ home: join(work, 'cloudlet-a') });
  const cloudletB = await openBaseRegistry({ home: join(work, 'cloudlet-b') });
  let synthesized: SynthesizedVm | undefined;
  try {
    step(
      '1. Cloudlet A: a base VM (tiny VM booted, paused, indexed)',
      'cloudlet base disk.raw --script ready.sh',
    );
    let t = performance.now();
    const { base } = await createBase({
      registry: cloudletA,
      disk: tiny.disk,
      memoryMiB: tiny.memoryMiB,
      kernel: tiny.kernel,
      initrd: tiny.initrd,
      append: tiny.append,
      label: 'tiny test VM',
      prepare: (vm) => waitForShell(vm),
    });
    console.log(
      `  base ${base.id.slice(0, 12)}: ${mb(base.diskBytes)} disk, ${mb(base.memoryBytes)} memory snapshot, ${seconds(t)}`,
    );
    t = performance.now();
    const exported = join(work, 'base.zip');
    await cloudletA.exportBase(base.id, exported);
    await cloudletB.importBase(exported);
    console.log(
      `  exported (${mb((await stat(exported)).size)}) and imported on cloudlet B in ${seconds(t)}`,
    );

    step(
      '2. Cloudlet A: customize the base by script and capture the overlay',
      'cloudlet overlay BASE -o app.zip --script app.sh -- -redir tcp:0::80',
    );
    t = performance.now();
    let before: GuestState | undefined;
    const overlayFile = join(work, 'app.zip');
    const made = await createOverlay({
      registry: cloudletA,
      base: base.id,
      output: overlayFile,
      qemuArgs: ['-redir', `tcp:0::${GUEST_HTTP_PORT}`],
      prepare: async (vm) => {
        before = await giveGuestState(vm.console);
      },
    });
    const { statistics } = made.summary.manifest;
    const count = (space: 'memory' | 'disk') =>
      Object.values(statistics[space]).reduce((n, kind) => n + kind.count, 0);
    console.log(
      `  overlay ${mb(made.summary.bytes)} (${count('memory')} memory pages, ${count('disk')} disk chunks changed) in ${seconds(t)}`,
    );
    if (before === undefined) throw new Error('the customization did not run');
    console.log(
      `  state given: $CLOUDLET_STATE=${before.shellVariable}, counter=${before.counter}, page "${before.page}"`,
    );

    step('3. Cloudlet B: synthesize the overlay', 'cloudlet synthesis BASE app.zip');
    synthesized = await synthesize({ registry: cloudletB, overlay: overlayFile });
    const { timings, stats } = synthesized;
    console.log(
      `  resumed in ${timings.total.toFixed(2)} s (open ${timings.open.toFixed(2)}, check ${timings.check.toFixed(2)}, ` +
        `apply ${timings.apply.toFixed(2)}, resume ${timings.resume.toFixed(2)}); ` +
        `${stats.memoryPages} pages and ${stats.diskClusters} disk clusters from the overlay`,
    );

    step(
      '4. The customized VM on cloudlet B: state intact, server answering',
      'curl http://127.0.0.1:PORT/state.html',
    );
    const vm = synthesized.vm;
    const after = await readGuestState(vm.console);
    const [c1, c2] = await sampleCounter(vm.console);
    const port = vm.hostPort(GUEST_HTTP_PORT);
    const page = await fetchStatePage(port);
    check('shell variable', after.shellVariable === before.shellVariable, after.shellVariable);
    check(
      'tmpfs file (sha256)',
      after.tmpfsSha256 === before.tmpfsSha256,
      `${after.tmpfsSha256.slice(0, 16)}…`,
    );
    check('file on disk', after.diskFile === before.diskFile, after.diskFile);
    check('counter keeps counting', c1 >= before.counter && c2 > c1, `${before.counter} → ${c1} → ${c2}`);
    check('httpd through forward', page === before.page, `http://127.0.0.1:${port}/state.html → "${page}"`);
  } finally {
    await synthesized?.stop();
    cloudletA.close();
    cloudletB.close();
    await rm(work, { recursive: true, force: true });
  }
  console.log(
    `\n${failures === 0 ? 'All state survived synthesis' : `${failures} check(s) failed`} (${seconds(started)} in all).`,
  );
  process.exitCode = failures === 0 ? 0 : 1;
}

await main();
