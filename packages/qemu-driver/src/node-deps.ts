import { spawn as spawnChild } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from './clock.js';
import type { ExitGuard, QemuDriverDeps, Spawn, UnixListener } from './deps.js';

export function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function acceptQueue(server: Server): () => Promise<Socket> {
  const ready: Socket[] = [];
  const waiting: ((socket: Socket) => void)[] = [];
  server.on('connection', (socket) => {
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else ready.push(socket);
  });
  return () => {
    const socket = ready.shift();
    return socket ? Promise.resolve(socket) : new Promise((resolve) => waiting.push(resolve));
  };
}

export function listenUnix(path: string): Promise<UnixListener> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    const accept = acceptQueue(server);
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve({
        accept,
        // Stops listening (and unlinks the path); accepted connections stay open. server.close()'s callback
        // would wait for those connections to end, so it is not awaited.
        close: async () => {
          server.close();
        },
      });
    });
  });
}

async function makeRunDir(parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, 'cloudlet-vm-'));
  await chmod(dir, 0o700); // mkdtemp already uses 0700; make it explicit, the sockets inside are the VM's controls
  return dir;
}

function pickTcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function pickUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

type Tracked = Parameters<ExitGuard['track']>[0];
const tracked = new Set<Tracked>();
let exitHookInstalled = false;

// Runs synchronously while Node exits normally (including process.exit() and uncaught exceptions). A
// SIGKILLed Node runs no hooks at all: that case is covered by setpriv's parent-death signal.
function killTrackedOnExit(): void {
  for (const entry of tracked) {
    try {
      entry.kill();
      if (entry.runDir !== undefined) rmSync(entry.runDir, { recursive: true, force: true });
    } catch {
      // Best effort: the process is going away.
    }
  }
}

export const processExitGuard: ExitGuard = {
  track(entry) {
    if (!exitHookInstalled) {
      process.on('exit', killTrackedOnExit);
      exitHookInstalled = true;
    }
    tracked.add(entry);
    return () => {
      tracked.delete(entry);
    };
  },
};

const spawn: Spawn = (command, args, options = {}) => {
  // The child gets its own descriptor of the log; the parent's copy is closed right after the spawn.
  const stderr = options.stderrFile === undefined ? 'pipe' : openSync(options.stderrFile, 'a', 0o600);
  try {
    return spawnChild(command, [...args], {
      detached: options.detached ?? false,
      stdio: [options.stdin ?? 'ignore', 'ignore', stderr],
    });
  } finally {
    if (typeof stderr === 'number') closeSync(stderr);
  }
};

function readFileTail(path: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(path).size;
    const buffer = Buffer.alloc(Math.min(size, maxBytes));
    const read = readSync(fd, buffer, 0, buffer.length, size - buffer.length);
    return buffer.subarray(0, read).toString();
  } finally {
    closeSync(fd);
  }
}

function readProcCmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw === '' ? undefined : raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

export function defaultDeps(): QemuDriverDeps {
  return {
    spawn,
    qemuBinary: 'qemu-system-x86_64',
    setprivBinary: 'setpriv',
    connectUnix,
    listenUnix,
    makeRunDir,
    removeDir: (dir) => rm(dir, { recursive: true, force: true }),
    pickFreePort: (proto, host) => (proto === 'tcp' ? pickTcpPort(host) : pickUdpPort(host)),
    clock: systemClock,
    exitGuard: processExitGuard,
    shBinary: '/bin/sh',
    readFileTail,
    readProcCmdline,
    signalPid: (pid, signal) => process.kill(pid, signal),
  };
}
