// One workload's overlay made once on a fresh registry, for the benchmarks that study one overlay
// (segment-codecs.ts, overlay-anatomy.ts).
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openBaseRegistry } from '@cloudlet/base-registry';
import { createBase, createOverlay, runGuestScript, waitForShell } from '@cloudlet/core';
import { serveDirectory } from '@cloudlet/test-vms';
import { buildVm } from './vms.js';
import { APP_FILES, WORKLOADS } from './workloads.js';

/** Creates `<work>/<name>.zip` for workload `name` (registry in `<work>/home`) and returns its path. */
export async function workloadOverlay(
  work: string,
  name: string,
  options: Partial<Pick<Parameters<typeof createOverlay>[0], 'delta' | 'codec' | 'level' | 'dedup'>> = {},
): Promise<string> {
  const workload = WORKLOADS.find((w) => w.name === name);
  if (workload === undefined) throw new Error(`no workload ${name}`);
  const files = join(work, 'files');
  await mkdir(files, { recursive: true });
  await promisify(execFile)('tar', ['-cf', join(files, 'app.tar'), '--transform', 's,.*/,,', ...APP_FILES]);
  const server = await serveDirectory(files);
  const registry = await openBaseRegistry({ home: join(work, 'home') });
  try {
    const vm = await buildVm(workload.base);
    const { base } = await createBase({ registry, ...vm, prepare: (v) => waitForShell(v) });
    const output = join(work, `${name}.zip`);
    const appUrl = server.url.replace('127.0.0.1', '10.0.2.2');
    await createOverlay({
      registry,
      base: base.id,
      output,
      qemuArgs: ['-redir', 'tcp:0::80'],
      ...options,
      prepare: (v) => runGuestScript(v, workload.script.replaceAll('@APP@', appUrl)),
    });
    return output;
  } finally {
    registry.close();
    await server.close();
  }
}
