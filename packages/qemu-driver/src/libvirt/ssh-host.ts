import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LibvirtBackendError } from './connection.js';
import { type SshTarget, sshOptions } from './libvirt-host.js';

/** A TCP forward as the tunnel carries it: 127.0.0.1:`localPort` here → `hostAddress:hostPort` there. */
export interface TcpTunnel {
  readonly localPort: number;
  readonly hostAddress: string;
  readonly hostPort: number;
}

export interface DomainGuardOptions {
  readonly domain: string;
  /** libvirt's QEMU run folder on the host (the pid file `<domain>.pid`). */
  readonly stateDir: string;
  /** The host folder of the domain's sockets; removed there once QEMU is gone. */
  readonly hostDir: string;
  /** [local path, host path] of each unix socket to tunnel (QMP, serial console, VNC). */
  readonly unixSockets: ReadonlyArray<readonly [string, string]>;
  readonly tcp: readonly TcpTunnel[];
}

/**
 * One ssh session per remote VM: it carries the tunnels and runs a guard on the host that reports QEMU's pid,
 * then its end, and SIGKILLs it when the session ends first (this process died, or the link did) — the
 * remote counterpart of the local watchdog.
 */
export interface DomainGuard {
  /** QEMU's pid on the host, once libvirt wrote it and the tunnels listen here. */
  readonly pid: Promise<number>;
  /** Resolves when QEMU has exited on the host or the session ended; never rejects. */
  readonly ended: Promise<void>;
  /** Ends the session (the guard then kills QEMU if it still runs). */
  close(): void;
}

/** The shell on a libvirt host, reached over ssh; a fake in unit tests. */
export interface RemoteShell {
  readonly host: string;
  /** Runs `script` under `sh -c` on the host with `args` as $1…; resolves with its stdout. */
  run(script: string, args?: readonly string[]): Promise<string>;
  guard(options: DomainGuardOptions): DomainGuard;
}

/** Single-quotes a word for the remote user's shell (ssh hands the command line to it as one string). */
export const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

const remoteCommand = (script: string, args: readonly string[]) =>
  ['sh', '-c', script, 'sh', ...args].map(shellQuote).join(' ');

// $1 domain, $2 libvirt's state folder, $3 the host socket folder. Zombies count as gone: a daemonized QEMU's
// parent may be an init that never reaps.
const GUARD_SCRIPT = `
pidfile="$2/$1.pid"; n=0
while [ ! -s "$pidfile" ]; do
  n=$((n + 1)); if [ $n -gt 100 ]; then rm -rf "$3"; echo nopid; exit 1; fi; sleep 0.05
done
pid=$(cat "$pidfile"); echo "pid $pid"
alive() { [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; }
( while alive; do sleep 0.05; done; rm -rf "$3"; echo exited; kill $$ 2>/dev/null ) &
read -r _ || true
kill -9 "$pid" 2>/dev/null
wait
`;

const STDERR_LIMIT = 16 * 1024;

function tunnelOptions(options: DomainGuardOptions): string[] {
  return [
    ...['-o', 'ExitOnForwardFailure=yes', '-o', 'StreamLocalBindUnlink=yes'],
    ...options.unixSockets.flatMap(([local, remote]) => ['-L', `${local}:${remote}`]),
    ...options.tcp.flatMap((t) => ['-L', `127.0.0.1:${t.localPort}:${t.hostAddress}:${t.hostPort}`]),
  ];
}

/** The real RemoteShell: OpenSSH's client (the URI's `command`, else `ssh` on PATH) with the URI's options. */
export function sshRemoteShell(target: SshTarget, uri: string): RemoteShell {
  const sshBinary = target.command ?? 'ssh';
  const base = sshOptions(target);
  const failed = (operation: string, detail: string) =>
    new LibvirtBackendError('operation', uri, operation, detail.trim() || 'ssh failed');
  return {
    host: target.host,
    run: (script, args = []) =>
      new Promise((resolve, reject) => {
        const child = spawn(sshBinary, [...base, target.host, remoteCommand(script, args)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-STDERR_LIMIT)));
        child.on('error', (e) => reject(failed('ssh', e.message)));
        child.on('close', (code) =>
          code === 0 ? resolve(out) : reject(failed('ssh', err || `exit ${code}`)),
        );
      }),
    guard: (options) => {
      const args = [options.domain, options.stateDir, options.hostDir];
      const child = spawn(
        sshBinary,
        [...base, ...tunnelOptions(options), target.host, remoteCommand(GUARD_SCRIPT, args)],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-STDERR_LIMIT)));
      const ended = new Promise<void>((resolve) => {
        child.on('close', () => resolve());
        child.on('error', () => resolve());
      });
      const pid = new Promise<number>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          const match = /^pid (\d+)$/.exec(line);
          if (match !== null) resolve(Number(match[1]));
          else if (line === 'nopid')
            reject(failed('start', `libvirt wrote no pid file for ${options.domain}`));
        });
        void ended.then(() => reject(failed('tunnel', err || 'the ssh session ended')));
      });
      pid.catch(() => {});
      return {
        pid,
        ended,
        close: () => {
          child.stdin.end();
          child.kill('SIGTERM');
        },
      };
    },
  };
}
