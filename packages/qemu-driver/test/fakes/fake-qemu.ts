import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import type {
  ExitGuard,
  QemuDriverDeps,
  SpawnedProcess,
  SpawnOptions,
  UnixListener,
} from '../../src/index.js';
import { type FakeQmp, fakeQmp } from './fake-qmp.js';
import { type FakeShell, fakeShell } from './fake-shell.js';
import { type FakeSocket, fakeSocket } from './fake-socket.js';

const enoent = (path: string) => Object.assign(new Error(`connect ENOENT ${path}`), { code: 'ENOENT' });

/** One spawned "QEMU": records signals, plays QMP and the serial shell, and exits on request. */
export class FakeQemu {
  readonly emitter = new EventEmitter();
  readonly stderr = new PassThrough();
  readonly signals: string[] = [];
  readonly qmp: FakeQmp = fakeQmp();
  readonly shell: FakeShell = fakeShell();
  /** Bytes written into the incoming-migration socket. */
  get incoming(): Buffer[] {
    return this.incomingSocket?.bytes ?? [];
  }
  exited = false;
  /** connectUnix attempts that fail with ENOENT before the sockets "appear". */
  socketsAfterAttempts = 0;
  attempts = 0;
  /** What happens when SIGKILL arrives (default: exit at once). */
  ignoreSignals = false;
  incomingSocket: FakeSocket | undefined;
  /** How QEMU treats an incoming migration connection (default: MIGRATION completed once the stream ends). */
  onIncoming: (peer: FakeSocket) => void = (peer) =>
    peer.onFinish(() => this.qmp.event('MIGRATION', { status: 'completed' }));
  /** Set by `migrate-incoming`: the path QEMU now listens on. */
  listeningOn: string | undefined;

  /** unref() was called (the driver let go of it). */
  unrefed = false;

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly pid: number,
    readonly options: SpawnOptions = {},
  ) {
    this.qmp.handle('quit', (_args, id) => {
      this.qmp.reply(id, { return: {} });
      this.exit(0, null);
      return undefined;
    });
    this.qmp.handle('query-migrate', () => ({ return: { status: 'completed' } }));
    this.qmp.handle('migrate-incoming', (args) => {
      this.listeningOn = String(args?.uri).replace(/^unix:/, '');
      return { return: {} };
    });
  }

  /** The SpawnedProcess handed to the driver. */
  get child(): SpawnedProcess {
    const qemu = this;
    return {
      pid: this.pid,
      stderr: this.stderr,
      unref() {
        qemu.unrefed = true;
      },
      kill(signal = 'SIGTERM') {
        qemu.signals.push(signal);
        if (!qemu.ignoreSignals && !qemu.exited) qemu.exit(null, signal);
        return true;
      },
      once(event: string, listener: (...args: never[]) => void) {
        qemu.emitter.once(event, listener as (...args: unknown[]) => void);
        return this;
      },
    } as SpawnedProcess;
  }

  /** QEMU exits: stderr is written, sockets drop, then 'exit' is emitted. */
  exit(code: number | null, signal: string | null, stderr = ''): void {
    if (this.exited) return;
    this.exited = true;
    if (stderr) this.stderr.write(stderr);
    this.stderr.end();
    this.qmp.hangUp();
    this.shell.hangUp();
    this.incomingSocket?.hangUp();
    setImmediate(() => this.emitter.emit('exit', code, signal));
  }

  connect(path: string): Duplex {
    if (this.exited) throw Object.assign(new Error('ECONNREFUSED'), { code: 'ECONNREFUSED' });
    if (path.endsWith('/qmp.sock') || path.endsWith('/serial.sock')) {
      this.attempts++;
      if (this.attempts <= this.socketsAfterAttempts) throw enoent(path);
      return path.endsWith('/qmp.sock') ? this.qmp.socket : this.shell.socket;
    }
    if (path === this.listeningOn) {
      const peer = fakeSocket();
      this.incomingSocket = peer;
      this.onIncoming(peer);
      return peer.socket;
    }
    throw enoent(path);
  }
}

/** A spawned watchdog shell: what the driver wrote to its stdin. */
export interface FakeWatchdog {
  readonly args: readonly string[];
  readonly options: SpawnOptions;
  readonly stdin: PassThrough;
  stdinText(): string;
  unrefed: boolean;
}

export interface FakeHost {
  readonly deps: Partial<QemuDriverDeps>;
  readonly spawned: FakeQemu[];
  readonly watchdogs: FakeWatchdog[];
  /** readFileTail's files (e.g. qemu.log), by path. */
  readonly files: Map<string, string>;
  /** readProcCmdline's processes, by pid; signalPid records into `signalled`. */
  readonly procs: Map<number, string[]>;
  readonly signalled: [number, string][];
  readonly removedDirs: string[];
  readonly tracked: Set<Parameters<ExitGuard['track']>[0]>;
  /** Runs for every spawned QEMU before the driver talks to it. */
  onSpawn(setup: (qemu: FakeQemu, index: number) => void): void;
  /** The outgoing-migration listener: resolve `connectMigration` to play QEMU connecting to it. */
  readonly migrationListeners: { path: string; connect(): FakeSocket; closed: boolean }[];
  last(): FakeQemu;
}

export function fakeHost(): FakeHost {
  const spawned: FakeQemu[] = [];
  const watchdogs: FakeWatchdog[] = [];
  const files = new Map<string, string>();
  const procs = new Map<number, string[]>();
  const signalled: [number, string][] = [];
  const removedDirs: string[] = [];
  const tracked = new Set<Parameters<ExitGuard['track']>[0]>();
  const migrationListeners: FakeHost['migrationListeners'] = [];
  let setup: (qemu: FakeQemu, index: number) => void = () => {};
  let nextPort = 40000;
  let nextDir = 1;
  const last = () => {
    const qemu = spawned.at(-1);
    if (!qemu) throw new Error('nothing spawned');
    return qemu;
  };
  const listenUnix = async (path: string): Promise<UnixListener> => {
    let deliver: (socket: Duplex) => void = () => {};
    const accepted = new Promise<Duplex>((resolve) => (deliver = resolve));
    const entry = {
      path,
      closed: false,
      connect: () => {
        const peer = fakeSocket();
        deliver(peer.socket);
        return peer;
      },
    };
    migrationListeners.push(entry);
    return {
      accept: () => accepted,
      close: async () => {
        entry.closed = true;
      },
    };
  };
  const deps: Partial<QemuDriverDeps> = {
    spawn: (command, args, options = {}) => {
      if (command === 'sh') return spawnWatchdog(watchdogs, args, options);
      const qemu = new FakeQemu(command, args, 1000 + spawned.length, options);
      spawned.push(qemu);
      setup(qemu, spawned.length - 1);
      return qemu.child;
    },
    connectUnix: async (path) => last().connect(path),
    listenUnix,
    makeRunDir: async () => `/fake/run${nextDir++}`,
    removeDir: async (dir) => {
      removedDirs.push(dir);
    },
    pickFreePort: async () => nextPort++,
    shBinary: 'sh',
    readFileTail: (path) => files.get(path) ?? '',
    readProcCmdline: (pid) => procs.get(pid),
    signalPid: (pid, signal) => {
      signalled.push([pid, signal]);
    },
    exitGuard: {
      track: (entry) => {
        tracked.add(entry);
        return () => tracked.delete(entry);
      },
    },
  };
  return {
    deps,
    spawned,
    watchdogs,
    files,
    procs,
    signalled,
    removedDirs,
    tracked,
    onSpawn: (fn) => (setup = fn),
    migrationListeners,
    last,
  };
}

function spawnWatchdog(watchdogs: FakeWatchdog[], args: readonly string[], options: SpawnOptions) {
  const stdin = new PassThrough();
  let text = '';
  stdin.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const watchdog: FakeWatchdog = { args, options, stdin, stdinText: () => text, unrefed: false };
  watchdogs.push(watchdog);
  return {
    pid: 5000 + watchdogs.length,
    stderr: null,
    stdin,
    unref: () => {
      watchdog.unrefed = true;
    },
    kill: () => true,
    once: () => undefined,
  } as SpawnedProcess;
}
