import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openLibvirtConnection } from './connection.js';

// Hosts without systemd (this container, CI) have no socket activation: virtlogd and libvirtd must be
// started by hand. Several test processes may want them at once, and libvirtd's QEMU driver allows only
// one daemon per host, so whoever finds none running starts both, every user leaves a marker, and the
// last one to leave stops them by PID (never by name).

export interface LibvirtDaemonsOptions {
  /**
   * Folder for the daemons' logs (libvirtd.log, virtlogd.log). Keep it while the daemons run, also after this
   * process left: they may serve others, and libvirtd passes its log settings on to every QEMU it starts.
   */
  readonly dir: string;
  /** Shared folder for the user markers and daemons.json (default /run/cloudlet-libvirt). */
  readonly coordDir?: string;
  readonly timeoutMs?: number;
}

export interface LibvirtDaemons {
  /** The URI to connect to: qemu:///system. */
  readonly uri: string;
  /** Whether this call started the daemons (false: they were running already). */
  readonly started: boolean;
  readonly libvirtdLog: string | undefined;
  /** Leaves; the last user stops the daemons this helper started (not a system-started libvirtd). */
  stop(): Promise<void>;
}

const URI = 'qemu:///system';

interface DaemonPids {
  readonly libvirtd: number;
  readonly virtlogd?: number;
}

async function answers(uri: string): Promise<boolean> {
  try {
    await (await openLibvirtConnection(uri)).close();
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function startDetached(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { detached: true, stdio: 'ignore', env: { ...process.env, ...env } });
  child.on('error', () => {}); // a missing binary shows as "libvirtd did not answer" below
  child.unref();
  return child;
}

// libvirt re-probes QEMU (~4 s, a dozen times per domain start: ~48 s) whenever its capability cache says
// "KVM was enabled when probing, but it is not available now" — which a root-only /dev/kvm (no udev here)
// makes permanent. libvirtd runs in its own mount namespace with /dev/kvm hidden: TCG only, cache valid.
const LIBVIRTD_SCRIPT = '[ -e /dev/kvm ] && mount --bind /dev/null /dev/kvm; exec /usr/sbin/libvirtd -p "$1"';

/**
 * libvirtd's own mount namespace (above) must still see mounts made later in ours — an early-start disk on
 * cloudletfs — so `/` has to be a shared mount, as systemd makes it at boot. A container's root may be
 * private: then it is made rshared, the distribution default, before libvirtd's namespace is cloned from it.
 */
function ensureSharedRoot(): void {
  const root = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((line) => line.split(' ')[4] === '/');
  if (root !== undefined && !/ shared:\d+/.test(root)) execFileSync('mount', ['--make-rshared', '/']);
}

async function launchDaemons(dir: string): Promise<DaemonPids> {
  await mkdir(dir, { recursive: true });
  ensureSharedRoot();
  const virtlogd = startDetached('/usr/sbin/virtlogd', ['-p', join(dir, 'virtlogd.pid')], {
    LIBVIRT_LOG_OUTPUTS: `3:file:${join(dir, 'virtlogd.log')}`,
  });
  const libvirtd = startDetached(
    'unshare',
    ['--mount', '--propagation', 'slave', 'sh', '-c', LIBVIRTD_SCRIPT, 'sh', join(dir, 'libvirtd.pid')],
    { LIBVIRT_LOG_OUTPUTS: `3:file:${join(dir, 'libvirtd.log')}` },
  );
  if (libvirtd.pid === undefined) throw new Error('could not spawn libvirtd (is util-linux unshare there?)');
  return { libvirtd: libvirtd.pid, ...(virtlogd.pid === undefined ? {} : { virtlogd: virtlogd.pid }) };
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(what);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs `start` holding `<coordDir>/start.lock` (a folder: mkdir is atomic); a dead holder's lock is taken over. */
async function withStartLock(coordDir: string, timeoutMs: number, start: () => Promise<void>): Promise<void> {
  const lock = join(coordDir, 'start.lock');
  const deadline = Date.now() + 2 * timeoutMs;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && !alive(holder)) await rm(lock, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`${lock} held by pid ${holder} for too long`);
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    await writeFile(join(lock, 'pid'), String(process.pid));
    await start();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function otherUsers(coordDir: string, mine: string): Promise<boolean> {
  const names = await readdir(join(coordDir, 'users')).catch(() => []);
  return names.some((n) => n !== mine && alive(Number.parseInt(n, 10)));
}

async function stopPids(pids: DaemonPids): Promise<void> {
  for (const pid of [pids.libvirtd, pids.virtlogd]) {
    if (pid === undefined || !alive(pid) || isZombie(pid)) continue;
    process.kill(pid, 'SIGTERM');
    await waitUntil(async () => !alive(pid) || isZombie(pid), 10_000, `pid ${pid} did not stop`).catch(() =>
      process.kill(pid, 'SIGKILL'),
    );
  }
}

/** A zombie has stopped: its parent (maybe a Node process gone since) reaps it, PID 1 here does not. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Makes sure virtlogd and libvirtd answer at qemu:///system; see LibvirtDaemons.stop. */
export async function startLibvirtDaemons(options: LibvirtDaemonsOptions): Promise<LibvirtDaemons> {
  const coordDir = options.coordDir ?? '/run/cloudlet-libvirt';
  const timeoutMs = options.timeoutMs ?? 30_000;
  await mkdir(join(coordDir, 'users'), { recursive: true });
  const marker = `${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(join(coordDir, 'users', marker), '');
  const pidsFile = join(coordDir, 'daemons.json');
  let started = false;
  if (!(await answers(URI))) {
    // Two processes finding no daemon at once must not both start one (the second libvirtd fails on its pid
    // files and takes the first one's socket down with it): one starts, the others wait for it to answer.
    await withStartLock(coordDir, timeoutMs, async () => {
      if (await answers(URI)) return;
      const pids = await launchDaemons(options.dir);
      await writeFile(pidsFile, JSON.stringify(pids));
      started = true;
      await waitUntil(() => answers(URI), timeoutMs, `libvirtd did not answer within ${timeoutMs} ms`);
    });
  }
  return {
    uri: URI,
    started,
    libvirtdLog: started ? join(options.dir, 'libvirtd.log') : undefined,
    async stop() {
      await rm(join(coordDir, 'users', marker), { force: true });
      if (await otherUsers(coordDir, marker)) return;
      const text = await readFile(pidsFile, 'utf8').catch(() => undefined);
      if (text === undefined) return; // started by someone else (systemd, an operator): not ours to stop
      await rm(pidsFile, { force: true });
      await stopPids(JSON.parse(text) as DaemonPids);
    },
  };
}
