// A detachable QEMU has no parent-death signal (it must be able to outlive Node), so something else has to
// kill it when Node dies before `detach()`, including a SIGKILLed Node that runs no exit hook. That is this
// watchdog: a tiny shell in its own session (the terminal's Ctrl-C does not reach it either) that blocks
// reading a pipe from Node. Node writes "release" once QEMU is detached or gone; any other end of the pipe
// (EOF: Node died) makes it SIGKILL QEMU, but only while /proc/PID/cmdline still names this run folder (the
// PID may be reused), and remove the run folder unless it is to be kept.
import type { QemuDriverDeps, SpawnedProcess } from './deps.js';

const SCRIPT = [
  'read -r line',
  '[ "$line" = release ] && exit 0',
  'grep -aqF -- "$2/qmp.sock" "/proc/$1/cmdline" 2>/dev/null || exit 0',
  'kill -KILL "$1"',
  '[ "$3" = remove ] && rm -rf -- "$2"',
  'exit 0',
].join('\n');

export interface Watchdog {
  /** QEMU is detached or gone: the watchdog exits without touching it. Idempotent. */
  release(): void;
}

export function startWatchdog(
  deps: Pick<QemuDriverDeps, 'spawn' | 'shBinary'>,
  qemuPid: number,
  runDir: string,
  removeRunDir: boolean,
): Watchdog {
  const args = ['-c', SCRIPT, 'cloudlet-watchdog', String(qemuPid), runDir, removeRunDir ? 'remove' : 'keep'];
  const child: SpawnedProcess = deps.spawn(deps.shBinary, args, { detached: true, stdin: 'pipe' });
  child.once('error', () => {}); // no shell: nothing to watch with; the exit guard still covers normal exits
  child.once('exit', () => {});
  child.stdin?.on('error', () => {}); // EPIPE if the shell is already gone
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      child.stdin?.end('release\n');
      child.unref?.();
    },
  };
}
