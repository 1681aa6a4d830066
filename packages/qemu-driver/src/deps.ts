import type { Duplex, Readable, Writable } from 'node:stream';
import type { Clock } from './clock.js';

/** The part of a ChildProcess the driver uses (a fake in unit tests). */
export interface SpawnedProcess {
  readonly pid?: number | undefined;
  readonly stderr: Readable | null;
  /** Only with `stdin: 'pipe'`. */
  readonly stdin?: Writable | null;
  /** Lets Node exit while the process still runs (detached VMs). */
  unref?(): void;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
}

export interface SpawnOptions {
  /** Its own session (setsid): the terminal's Ctrl-C and hang-up do not reach it. */
  readonly detached?: boolean;
  /** Append stderr to this file instead of piping it to Node (it then outlives Node). */
  readonly stderrFile?: string;
  /** A pipe to write to; by default stdin is /dev/null. */
  readonly stdin?: 'pipe';
}

/** Without options: stdin and stdout /dev/null, stderr piped to Node, same session. */
export type Spawn = (command: string, args: readonly string[], options?: SpawnOptions) => SpawnedProcess;

/** A listening unix socket that hands out incoming connections one by one. */
export interface UnixListener {
  accept(): Promise<Duplex>;
  close(): Promise<void>;
}

/**
 * Last-resort cleanup when Node itself exits: SIGKILL every QEMU still running and remove its run folder.
 * `track` returns the function that stops tracking (called once QEMU is gone).
 */
export interface ExitGuard {
  track(entry: { readonly kill: () => void; readonly runDir?: string }): () => void;
}

/** Everything with a side effect that the driver needs. Defaults are the real thing (`defaultDeps()`). */
export interface QemuDriverDeps {
  readonly spawn: Spawn;
  readonly qemuBinary: string;
  /** util-linux setpriv, used to give QEMU a parent-death signal. */
  readonly setprivBinary: string;
  /** Rejects (ENOENT, ECONNREFUSED) while the socket is not there yet. */
  readonly connectUnix: (path: string) => Promise<Duplex>;
  readonly listenUnix: (path: string) => Promise<UnixListener>;
  /** Creates a private (0700) run folder under `parent` (default: the OS temp folder). */
  readonly makeRunDir: (parent?: string) => Promise<string>;
  readonly removeDir: (dir: string) => Promise<void>;
  /** A host port that was free a moment ago (bind to port 0, read it, close). */
  readonly pickFreePort: (proto: 'tcp' | 'udp', host: string) => Promise<number>;
  readonly clock: Clock;
  readonly exitGuard: ExitGuard;
  /** A POSIX shell, for the watchdog of a detachable VM. */
  readonly shBinary: string;
  /** The last `maxBytes` of a text file ('' if it does not exist); reads a detachable VM's qemu.log. */
  readonly readFileTail: (path: string, maxBytes: number) => string;
  /** /proc/PID/cmdline split at NULs; undefined once the process is gone (a zombie's is empty). */
  readonly readProcCmdline: (pid: number) => string[] | undefined;
  /** kill(2) of a process that is not our child (a detached VM seen from another Node process). */
  readonly signalPid: (pid: number, signal: NodeJS.Signals) => void;
}
