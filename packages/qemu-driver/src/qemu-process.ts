import { join } from 'node:path';
import { type Clock, sleep } from './clock.js';
import type { QemuDriverDeps, SpawnedProcess } from './deps.js';
import type { QemuExit } from './errors.js';
import { startWatchdog } from './watchdog.js';

const STDERR_LIMIT = 64 * 1024;
const STDERR_DRAIN_MS = 300;

/** A spawned QEMU: its pid, captured stderr and a promise of its exit. */
export interface QemuProcess {
  readonly pid: number;
  /** Resolves once QEMU has exited and its stderr is read; never rejects. */
  readonly exited: Promise<QemuExit>;
  exit(): QemuExit | undefined;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
  /** Lets QEMU outlive this process: no exit guard, no watchdog, `kill` does nothing any more. */
  detach(): void;
  isDetached(): boolean;
}

export interface QemuProcessOptions {
  /** The VM's run folder. */
  readonly runDir: string;
  /** Remove the run folder when Node exits while QEMU still runs (false with keepRunDir). */
  readonly removeRunDirOnExit: boolean;
  /** Spawn so that QEMU can be detached later (own session, stderr to qemu.log, a watchdog). */
  readonly detachable: boolean;
}

type ProcessDeps = Pick<
  QemuDriverDeps,
  'spawn' | 'qemuBinary' | 'setprivBinary' | 'exitGuard' | 'shBinary' | 'readFileTail'
> & { clock: Clock };

/** Where a detachable QEMU's stderr goes: a file, so it is still readable after Node is gone. */
export const qemuLogIn = (runDir: string) => join(runDir, 'qemu.log');

/**
 * The command line that starts QEMU. `setpriv --pdeathsig KILL` makes the kernel SIGKILL QEMU when its parent
 * dies, even when Node is SIGKILLed and runs no exit hook. The signal follows the *thread* that spawned the
 * child: Node spawns from the main thread (libuv's loop thread) here, so QEMU lives as long as this
 * process. Spawning from a worker thread would tie QEMU to that worker instead. A detachable QEMU runs
 * without it (a parent-death signal cannot be taken back); its watchdog plays that part until `detach()`.
 */
export function spawnCommand(
  deps: Pick<QemuDriverDeps, 'qemuBinary' | 'setprivBinary'>,
  argv: readonly string[],
  detachable = false,
) {
  if (detachable) return { command: deps.qemuBinary, args: [...argv] };
  return { command: deps.setprivBinary, args: ['--pdeathsig', 'KILL', '--', deps.qemuBinary, ...argv] };
}

function stderrCollector() {
  let text = '';
  return {
    add: (chunk: Buffer | string) => {
      text += chunk.toString();
      if (text.length > STDERR_LIMIT) text = text.slice(-STDERR_LIMIT);
    },
    text: () => text,
  };
}

/** Piped stderr is collected as it comes; a detachable QEMU's is read from qemu.log when asked for. */
function stderrOf(deps: ProcessDeps, child: SpawnedProcess, logFile: string | undefined) {
  if (logFile !== undefined) {
    return { ended: Promise.resolve(), text: () => deps.readFileTail(logFile, STDERR_LIMIT) };
  }
  const collector = stderrCollector();
  const ended = new Promise<void>((resolve) => {
    if (!child.stderr) return resolve();
    child.stderr.on('data', collector.add);
    child.stderr.once('end', resolve);
    child.stderr.once('close', resolve);
    child.stderr.once('error', () => resolve());
  });
  return { ended, text: collector.text };
}

export function startQemuProcess(
  deps: ProcessDeps,
  argv: readonly string[],
  options: QemuProcessOptions,
): QemuProcess {
  const { command, args } = spawnCommand(deps, argv, options.detachable);
  const logFile = options.detachable ? qemuLogIn(options.runDir) : undefined;
  const child = deps.spawn(
    command,
    args,
    logFile === undefined ? {} : { detached: true, stderrFile: logFile },
  );
  const stderr = stderrOf(deps, child, logFile);
  let exit: QemuExit | undefined;
  let gone = false;
  let killed = false;
  let detached = false;
  const untrack = deps.exitGuard.track({
    kill: () => child.kill('SIGKILL'),
    ...(options.removeRunDirOnExit ? { runDir: options.runDir } : {}),
  });
  const watchdog =
    options.detachable && child.pid !== undefined
      ? startWatchdog(deps, child.pid, options.runDir, options.removeRunDirOnExit)
      : undefined;
  const exited = new Promise<QemuExit>((resolve) => {
    const finish = async (code: number | null, signal: NodeJS.Signals | null, extra = '') => {
      gone = true;
      untrack();
      watchdog?.release();
      // 'exit' can come before the last stderr bytes; they hold the reason, so wait for them briefly.
      await Promise.race([stderr.ended, sleep(deps.clock, STDERR_DRAIN_MS)]);
      exit ??= { code, signal, stderr: stderr.text() + extra };
      resolve(exit);
    };
    child.once('exit', (code, signal) => void finish(code, signal));
    // Spawn failures (e.g. setpriv or QEMU not installed) come as 'error' without 'exit'.
    child.once('error', (error) => void finish(null, null, `${command}: ${error.message}\n`));
  });
  return {
    pid: child.pid ?? -1,
    exited,
    exit: () => exit,
    stderr: stderr.text,
    kill: (signal) => {
      // Once QEMU is gone its pid may be reused; one SIGKILL is enough; a detached QEMU is not ours.
      if (gone || detached || (signal === 'SIGKILL' && killed)) return;
      killed ||= signal === 'SIGKILL';
      child.kill(signal);
    },
    detach: () => {
      detached = true;
      untrack();
      watchdog?.release();
      child.unref?.();
    },
    isDetached: () => detached,
  };
}
