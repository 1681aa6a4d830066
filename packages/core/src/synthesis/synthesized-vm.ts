import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BaseInfo } from '@cloudlet/base-registry';
import type { CloudletFs } from '@cloudlet/cloudletfs';
import { type RunningVm, stopDetachedVm } from '@cloudlet/qemu-driver';
import { SynthesisError } from './errors.js';
import type {
  DetachedSynthesis,
  SynthesisEndpoints,
  SynthesisStats,
  SynthesisTimings,
  SynthesizedVm,
} from './types.js';

const DETACHED_FILE = 'vm.json';

/** What the handle needs of the rebuilt VM's files. */
export interface PreparedDisk {
  readonly disk: string;
  /** Only a qcow2 over the base disk can be kept; an early-start disk lives on cloudletfs. */
  readonly keepable: boolean;
  readonly arrived: Promise<void>;
  readonly fs?: CloudletFs<'disk' | 'memory'>;
  /** After QEMU is gone: unmount, close files. */
  release(): Promise<void>;
}

export function synthesizedVm(
  vm: RunningVm,
  base: BaseInfo,
  workDir: string,
  prepared: PreparedDisk,
  facts: { timings: SynthesisTimings; stats: SynthesisStats },
): SynthesizedVm {
  let stopped: Promise<void> | undefined;
  const { paths } = vm;
  const endpoints: SynthesisEndpoints = {
    portForwards: vm.portForwards,
    serialSocket: paths.serialSocket,
    serialLog: paths.serialLog,
    qmpSocket: paths.qmpSocket,
    ...(vm.spec.display.type === 'none' ? {} : { vncSocket: paths.vncSocket }),
  };
  return {
    vm,
    base,
    workDir,
    disk: prepared.disk,
    arrived: prepared.arrived,
    ...(prepared.fs === undefined ? {} : { cloudletfs: prepared.fs }),
    ...facts,
    endpoints,
    stop(stopOptions = {}) {
      if (stopOptions.keepDisk === true && !prepared.keepable)
        return Promise.reject(
          new SynthesisError('bad-options', 'an early-start disk lives on cloudletfs and cannot be kept'),
        );
      stopped ??= (async () => {
        // QEMU first: it holds the disk, which may be a file on cloudletfs.
        await vm.shutdown({ timeoutMs: 5000 });
        await prepared.release();
        if (stopOptions.keepDisk === true) await removeAllBut(workDir, prepared.disk);
        else await rm(workDir, { recursive: true, force: true });
      })();
      return stopped;
    },
    async detach() {
      const { pid, runDir } = await vm.detach();
      const detached: DetachedSynthesis = { pid, runDir, workDir, disk: prepared.disk, endpoints };
      await writeFile(join(workDir, DETACHED_FILE), `${JSON.stringify(detached, null, 2)}\n`);
      return detached;
    },
  };
}

/** Stops a VM that `detach()` left running and removes its folder (`keepDisk`: all but the qcow2). */
export async function stopDetachedSynthesis(
  workDir: string,
  options: { keepDisk?: boolean } = {},
): Promise<DetachedSynthesis> {
  let detached: DetachedSynthesis;
  try {
    detached = JSON.parse(await readFile(join(workDir, DETACHED_FILE), 'utf8')) as DetachedSynthesis;
  } catch (cause) {
    throw new SynthesisError(
      'not-detached',
      `${workDir} holds no detached VM (no readable ${DETACHED_FILE})`,
      {
        cause,
      },
    );
  }
  await stopDetachedVm({ pid: detached.pid, runDir: detached.runDir });
  if (options.keepDisk === true) await removeAllBut(workDir, detached.disk);
  else await rm(workDir, { recursive: true, force: true });
  return detached;
}

async function removeAllBut(dir: string, keep: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (path !== keep) await rm(path, { recursive: true, force: true });
  }
}
