// Boots the tiny test VM under QEMU (TCG) with plain child_process, the way qemu-notes §2 describes,
// and checks the disk, the shell and the network (httpd behind a hostfwd port).
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TinyVm, tinyVm } from '../src/index.js';

const diskroot = new URL('../tiny/diskroot/', import.meta.url);

/** Serial console on QEMU's stdio: collects output and runs shell commands between markers. */
class SerialConsole {
  private output = '';
  private seq = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly qemu: ChildProcessWithoutNullStreams) {
    qemu.stdout.setEncoding('utf8');
    qemu.stdout.on('data', (chunk: string) => {
      this.output += chunk;
      for (const l of this.listeners) l();
    });
    qemu.on('exit', () => {
      for (const l of this.listeners) l();
    });
  }

  /** Resolves with the first match of `re` in output received after offset `from`. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.output.slice(from));
        if (m) done(() => resolve(m));
        else if (this.qemu.exitCode !== null || this.qemu.signalCode !== null)
          done(() => reject(new Error(`QEMU exited while waiting for ${re}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timeout waiting for ${re}`))), timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /**
   * Runs `cmd` in the guest shell and returns its output. The `''` inside the markers keeps the
   * tty's echo of the command line from matching; only the shell's own output does.
   */
  async run(cmd: string, timeoutMs = 30_000): Promise<string> {
    const tag = ++this.seq;
    const from = this.output.length;
    this.qemu.stdin.write(`echo __S${tag}''__; ${cmd}; echo __E${tag}''__\n`);
    const m = await this.waitFor(new RegExp(`__S${tag}__\\r?\\n([\\s\\S]*?)__E${tag}__`), timeoutMs, from);
    return (m[1] ?? '').replace(/\r\n/g, '\n');
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

describe('tiny test VM', () => {
  let vm: TinyVm;
  let work: string;
  let qemu: ChildProcessWithoutNullStreams | undefined;
  let serial: SerialConsole;
  let port: number;
  let stderr = '';

  beforeAll(async () => {
    vm = tinyVm(); // throws TestVmMissingError with the build command if not built
    work = mkdtempSync(join(tmpdir(), 'tiny-vm-'));
    // Never boot disk.raw itself: mounting ext4 read-write changes it.
    const overlay = join(work, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', vm.disk, '-F', 'raw', overlay]);
    port = await freePort();

    const started = performance.now();
    qemu = spawn('qemu-system-x86_64', [
      ...['-machine', 'pc,accel=tcg', '-cpu', 'qemu64', '-m', String(vm.memoryMiB)],
      ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
      ...['-kernel', vm.kernel, '-initrd', vm.initrd, '-append', vm.append],
      ...['-drive', `file=${overlay},format=qcow2,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0'],
      ...[
        '-netdev',
        `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:80`,
        '-device',
        'virtio-net-pci,netdev=n0,addr=0x3',
      ],
      ...['-serial', 'stdio'],
    ]);
    qemu.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    serial = new SerialConsole(qemu);
    try {
      await serial.waitFor(new RegExp(vm.prompt), 120_000);
      expect(await serial.run('echo up')).toBe('up\n');
    } catch (err) {
      throw new Error(`${(err as Error).message}\nQEMU stderr: ${stderr}`);
    }
    console.info(
      `tiny VM: QEMU spawn -> shell answers in ${((performance.now() - started) / 1000).toFixed(2)} s`,
    );
  });

  afterAll(async () => {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      const exited = new Promise((r) => qemu?.once('exit', r));
      qemu.kill('SIGKILL');
      await exited;
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('mounts the ext4 disk on /mnt', async () => {
    expect(await serial.run('cat /mnt/hello.txt')).toBe(readFileSync(new URL('hello.txt', diskroot), 'utf8'));
    expect(await serial.run('uname -r')).toBe(`${vm.manifest.kernel.package.replace('linux-image-', '')}\n`);
  });

  it('serves /mnt/www over a forwarded port', async () => {
    await serial.run('httpd -p 80 -h /mnt/www');
    // httpd daemonizes; give it a moment to listen, but fail within seconds.
    let body = '';
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
        expect(res.status).toBe(200);
        body = await res.text();
        break;
      } catch (err) {
        if (i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    expect(body).toBe(readFileSync(new URL('www/index.html', diskroot), 'utf8'));
  });
});
