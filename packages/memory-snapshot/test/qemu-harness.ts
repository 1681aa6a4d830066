// Minimal QEMU + QMP harness for the real-QEMU tests: plain child_process and a line-based QMP
// exchange over a unix socket (kept inline so this package's tests depend on nothing else).
import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const HARDWARE = (memMiB: number) => [
  '-machine',
  'pc,accel=tcg',
  '-cpu',
  'qemu64',
  '-m',
  String(memMiB),
  '-nodefaults',
  '-no-user-config',
  '-display',
  'none',
  '-device',
  'virtio-net-pci,netdev=n0,addr=0x3',
  '-netdev',
  'user,id=n0',
];

type QmpReply = {
  return?: unknown;
  error?: { class: string; desc: string };
  id?: number;
  event?: string;
  QMP?: unknown;
};

export class Qemu {
  private socket: Socket | null = null;
  private buffered = '';
  private nextId = 1;
  private readonly pending = new Map<number, (reply: QmpReply) => void>();
  private stderrText = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly proc: ChildProcess) {
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (d: string) => {
      this.stderrText += d;
    });
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Spawns QEMU (paused, `-S`) with a QMP socket in `dir` and completes the QMP handshake. */
  static async start(dir: string, name: string, args: string[], all: Qemu[]): Promise<Qemu> {
    const sock = join(dir, `${name}.qmp`);
    const proc = spawn('qemu-system-x86_64', [...args, '-S', '-qmp', `unix:${sock},server=on,wait=off`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const qemu = new Qemu(proc);
    all.push(qemu);
    let exited = false;
    void qemu.exited.then(() => {
      exited = true;
    });
    for (let tries = 0; qemu.socket === null; tries++) {
      if (exited || tries > 200) throw new Error(`QEMU ${name} did not open QMP: ${qemu.stderr}`);
      await sleep(50);
      qemu.socket = await connect(sock);
    }
    qemu.socket.on('error', () => {}); // ECONNRESET when QEMU exits; the exit itself is reported
    qemu.socket.setEncoding('utf8');
    qemu.socket.on('data', (d: string) => qemu.onData(d));
    await qemu.execute('qmp_capabilities');
    return qemu;
  }

  private onData(data: string): void {
    this.buffered += data;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      const reply = JSON.parse(this.buffered.slice(0, nl)) as QmpReply;
      this.buffered = this.buffered.slice(nl + 1);
      if (reply.id !== undefined) {
        this.pending.get(reply.id)?.(reply);
        this.pending.delete(reply.id);
      }
    }
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const socket = this.socket;
    if (socket === null) throw new Error('QMP not connected');
    const id = this.nextId++;
    const reply = await new Promise<QmpReply>((resolve, reject) => {
      this.pending.set(id, resolve);
      void this.exited.then(() => reject(new Error(`QEMU exited during ${command}: ${this.stderr}`)));
      socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
    if (reply.error) throw new Error(`${command}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return;
  }

  /** Polls query-migrate until the migration leaves setup/active; returns the final status. */
  async migrationDone(): Promise<string> {
    for (;;) {
      const { status } = (await this.execute('query-migrate')) as { status?: string };
      if (status !== undefined && status !== 'setup' && status !== 'active') return status;
      await sleep(50);
    }
  }

  /** stop + raised bandwidth cap + `migrate exec:cat > file` (see docs/qemu-notes.md §3). */
  async snapshotTo(file: string): Promise<void> {
    await this.execute('stop');
    await this.execute('migrate-set-parameters', { 'max-bandwidth': 17179869184 });
    await this.execute('migrate', { uri: `exec:cat > ${shellQuote(file)}` });
    const status = await this.migrationDone();
    if (status !== 'completed') throw new Error(`snapshot ${status}: ${this.stderr}`);
  }

  kill(): void {
    this.socket?.destroy();
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

function connect(path: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(null));
  });
}

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
