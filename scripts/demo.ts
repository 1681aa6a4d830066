// The README demo: boot the tiny VM, give it state, snapshot its memory through the driver into the
// migration-stream reader, rewrite the stream (pages shuffled, zero pages dropped, re-sectioned), restore it
// in a fresh QEMU on a copy of the disk, and show that every piece of state survived.
// Run: `pnpm demo` (after `bash scripts/quickstart.sh setup`). Exits non-zero if any check fails.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectMigrationStream, writeMigrationStream } from '@cloudlet/memory-snapshot';
import { convertDisk, createDiskOverlay, createQemuDriver, type RunningVm } from '@cloudlet/qemu-driver';
import {
  fetchStatePage,
  GUEST_HTTP_PORT,
  type GuestState,
  giveGuestState,
  readGuestState,
  sampleCounter,
  tinyVm,
  tinyVmSpec,
} from '@cloudlet/test-vms';

const started = performance.now();
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(2)} s`;
const step = (text: string) => console.log(`\n\x1b[1m${text}\x1b[0m`);
let failures = 0;
function check(label: string, ok: boolean, detail: string) {
  if (!ok) failures++;
  console.log(`  ${ok ? '\x1b[32m✓\x1b[0m' : '\x1b[31m✗\x1b[0m'} ${label.padEnd(26)} ${detail}`);
}

function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

async function main() {
  const vm = tinyVm();
  const driver = createQemuDriver();
  const work = await mkdtemp(join(tmpdir(), 'cloudlet-demo-'));
  const source: { vm?: RunningVm } = {};
  const restored: { vm?: RunningVm } = {};
  try {
    step('1. Boot the tiny VM (Debian cloud kernel, busybox, ext4 disk) under QEMU/TCG');
    const overlay = join(work, 'disk.qcow2');
    await createDiskOverlay({ file: overlay, backingFile: vm.disk, backingFormat: 'raw' });
    let t = performance.now();
    source.vm = await driver.launch(tinyVmSpec(vm, { file: overlay, format: 'qcow2' }));
    await source.vm.console.waitFor(vm.prompt, 60_000);
    console.log(`  shell answers on ttyS0 after ${seconds(t)} (pid ${source.vm.pid})`);

    step('2. Give it state: shell variable, tmpfs file, running counter, disk file, httpd');
    const before: GuestState = await giveGuestState(source.vm.console);
    const sourcePort = source.vm.hostPort(GUEST_HTTP_PORT);
    const pageBefore = await fetchStatePage(sourcePort);
    console.log(
      `  $CLOUDLET_STATE=${before.shellVariable}  tmpfs sha256 ${before.tmpfsSha256.slice(0, 16)}…`,
    );
    console.log(`  counter=${before.counter}  http://127.0.0.1:${sourcePort}/state.html → "${pageBefore}"`);

    step('3. Snapshot memory through the driver into the migration-stream reader');
    t = performance.now();
    const snapshot = await source.vm.snapshot();
    const snap = await collectMigrationStream(snapshot.stream); // zero pages counted, not kept
    await snapshot.completed;
    const { prologue } = snap;
    console.log(
      `  ${(snap.bytes / 1e6).toFixed(1)} MB in ${seconds(t)}: machine ${prologue.machineType}, ` +
        `${prologue.blocks.length} RAM blocks, ${snap.pages.length} full pages, ${snap.zeroPages} zero pages, ` +
        `device state ${(snap.deviceTail.length / 1024).toFixed(0)} KiB`,
    );

    step('4. Keep the disk exactly as it was at the snapshot, then stop the source VM');
    const restoredDisk = join(work, 'restored.raw');
    await convertDisk({ source: overlay, target: restoredDisk, targetFormat: 'raw' });
    await source.vm.kill();
    console.log(`  qcow2 overlay → ${restoredDisk} (raw); source QEMU stopped`);

    step(
      '5. Rewrite the stream (pages shuffled, zero pages dropped, 1000 pages per section) into a fresh QEMU',
    );
    t = performance.now();
    const stream = writeMigrationStream({
      prologue,
      pages: shuffled(snap.pages),
      deviceTail: snap.deviceTail,
      pagesPerSection: 1000,
    });
    restored.vm = await driver.restore(tinyVmSpec(vm, { file: restoredDisk, format: 'raw' }), stream);
    console.log(`  restored and resumed in ${seconds(t)} (pid ${restored.vm.pid})`);

    step('6. Check the state survived');
    const after = await readGuestState(restored.vm.console);
    const restoredPort = restored.vm.hostPort(GUEST_HTTP_PORT);
    const [c1, c2] = await sampleCounter(restored.vm.console);
    const pageAfter = await fetchStatePage(restoredPort);
    check('shell variable', after.shellVariable === before.shellVariable, after.shellVariable);
    check(
      'tmpfs file (sha256)',
      after.tmpfsSha256 === before.tmpfsSha256,
      `${after.tmpfsSha256.slice(0, 16)}…`,
    );
    check('file on disk', after.diskFile === before.diskFile, after.diskFile);
    check('counter keeps counting', c1 >= before.counter && c2 > c1, `${before.counter} → ${c1} → ${c2}`);
    check(
      'httpd through new port',
      pageAfter === pageBefore && restoredPort !== sourcePort,
      `http://127.0.0.1:${restoredPort}/state.html → "${pageAfter}" (was port ${sourcePort})`,
    );
  } finally {
    await Promise.allSettled([source.vm?.kill(), restored.vm?.kill()]);
    await rm(work, { recursive: true, force: true });
  }
  console.log(
    `\n${failures === 0 ? 'All state survived' : `${failures} check(s) failed`} (${seconds(started)} in all).`,
  );
  process.exitCode = failures === 0 ? 0 : 1;
}

await main();
