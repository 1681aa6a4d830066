// The base most core VM tests start from: the tiny VM booted to its shell, snapshotted and registered.
import type { BaseInfo, BaseRegistry } from '@cloudlet/base-registry';
import { tinyVm } from '@cloudlet/test-vms';
import { createBase, createOverlay, runGuestScript, waitForShell } from '../src/index.js';

export async function createTinyBase(registry: BaseRegistry): Promise<BaseInfo> {
  const tiny = tinyVm();
  const { base } = await createBase({
    registry,
    disk: tiny.disk,
    memoryMiB: tiny.memoryMiB,
    kernel: tiny.kernel,
    initrd: tiny.initrd,
    append: tiny.append,
    prepare: (vm) => waitForShell(vm),
  });
  return base;
}

/** An overlay of `base` customized by a guest shell script, with guest port 80 forwarded (any host port). */
export async function createScriptedOverlay(
  registry: BaseRegistry,
  base: BaseInfo,
  output: string,
  script: string,
): Promise<void> {
  await createOverlay({
    registry,
    base: base.id,
    output,
    qemuArgs: ['-redir', 'tcp:0::80'],
    prepare: (vm) => runGuestScript(vm, script),
  });
}
