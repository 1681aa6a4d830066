// One synthesis in its own process (so its peak RSS is its own): synthesize() an overlay file or URL, poll the
// app through its forwarded port until it answers with the expected text, stop, print one JSON line.
// Spawned by bench/run.ts: node --import tsx bench/synth-child.ts '{"home":…,"overlay":…,"expect":…}'
import { openBaseRegistry } from '@cloudlet/base-registry';
import { synthesize } from '@cloudlet/core';

interface ChildArgs {
  readonly home: string;
  readonly overlay: string;
  readonly expect: string;
  readonly guestPort: number;
  /** Resume before the overlay has arrived, RAM and disk through cloudletfs (bench/early-start.ts). */
  readonly earlyStart?: boolean;
  /** With earlyStart: 'first' applies the memory before resuming. */
  readonly earlyStartMemory?: 'on-demand' | 'first';
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function answered(url: string, expect: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok && (await res.text()).includes(expect);
  } catch {
    return false;
  }
}

const registry = await openBaseRegistry({ home: args.home });
const t0 = performance.now();
const synth = await synthesize({
  registry,
  overlay: args.overlay,
  portForwards: [{ guestPort: args.guestPort }],
  ...(args.earlyStart === true ? { earlyStart: true } : {}),
  ...(args.earlyStartMemory === undefined ? {} : { earlyStartMemory: args.earlyStartMemory }),
});
try {
  const url = `http://127.0.0.1:${synth.vm.hostPort(args.guestPort)}/`;
  const deadline = t0 + 120_000;
  while (!(await answered(url, args.expect))) {
    if (performance.now() > deadline) throw new Error(`no answer containing "${args.expect}" from ${url}`);
    await sleep(20);
  }
  const toAnswerSeconds = (performance.now() - t0) / 1000;
  const { timings, stats } = synth;
  console.log(
    JSON.stringify({
      toAnswerSeconds,
      ...timings,
      overlayBytes: stats.overlayBytes,
      networkBytes: stats.networkBytes,
      memoryPages: stats.memoryPages,
      diskClusters: stats.diskClusters,
      maxRssKiB: process.resourceUsage().maxRSS,
    }),
  );
} finally {
  await synth.stop();
  registry.close();
}
