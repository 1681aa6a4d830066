import { type Clock, sleep } from './clock.js';
import type { QemuDriverDeps } from './deps.js';
import type { QemuExit } from './errors.js';

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
}

/**
 * The command line that starts QEMU. `setpriv --pdeathsig KILL` makes the kernel SIGKILL QEMU when its parent
 * dies, even when Node is SIGKILLed and runs no exit hook. The signal follows the *thread* that spawned the
 * child: Node spawns from the main thread (libuv's loop thread) here, so QEMU lives as long as this
 * process. Spawning from a worker thread would tie QEMU to that worker instead.
 */
export function spawnCommand(
  deps: Pick<QemuDriverDeps, 'qemuBinary' | 'setprivBinary'>,
  argv: readonly string[],
) {
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

export function startQemuProcess(
  deps: Pick<QemuDriverDeps, 'spawn' | 'qemuBinary' | 'setprivBinary' | 'exitGuard'> & { clock: Clock },
  argv: readonly string[],
  runDir: string | undefined,
): QemuProcess {
  const { command, args } = spawnCommand(deps, argv);
  const child = deps.spawn(command, args);
  const stderr = stderrCollector();
  let exit: QemuExit | undefined;
  let gone = false;
  let killed = false;
  const stderrEnded = new Promise<void>((resolve) => {
    if (!child.stderr) return resolve();
    child.stderr.on('data', stderr.add);
    child.stderr.once('end', resolve);
    child.stderr.once('close', resolve);
    child.stderr.once('error', () => resolve());
  });
  const untrack = deps.exitGuard.track({
    kill: () => child.kill('SIGKILL'),
    ...(runDir === undefined ? {} : { runDir }),
  });
  const exited = new Promise<QemuExit>((resolve) => {
    const finish = async (code: number | null, signal: NodeJS.Signals | null, extra = '') => {
      gone = true;
      untrack();
      // 'exit' can come before the last stderr bytes; they hold the reason, so wait for them briefly.
      await Promise.race([stderrEnded, sleep(deps.clock, STDERR_DRAIN_MS)]);
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
      // Once QEMU is gone its pid may be reused; and one SIGKILL is enough.
      if (gone || (signal === 'SIGKILL' && killed)) return;
      killed ||= signal === 'SIGKILL';
      child.kill(signal);
    },
  };
}
