// The synthesis acceptance flow, run once per VM backend (synthesis.vm.test.ts: direct QEMU,
// synthesis-libvirt.vm.test.ts: libvirt): a base made on cloudlet A is exported and imported on cloudlet B
// (another $CLOUDLET_HOME); an overlay customized on A (a disk file, a tmpfs file, a running counter, httpd with
// a CGI page, a forward in the legacy -redir syntax) is synthesized on B from the file and from HTTP URLs;
// every piece of state answers through the forwarded port. Bad input fails clearly, leaving nothing behind.
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  APP_SCRIPT,
  freePort,
  qemuMentioning,
  type ServedRequest,
  serveFile,
  tinyVm,
} from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readZip, writeZip } from '../../../packages/overlay-format/test/zip-tools.js';
import { expectAppRunning } from './app-running.js';
import { runCli, spawnCli, tinyBaseArgs } from './run-cli.js';

async function leftovers(home: string): Promise<string[]> {
  return readdir(join(home, 'synthesis')).catch(() => []);
}

export interface AcceptanceOptions {
  /** Arguments naming the backend for base, overlay and synthesis (e.g. --backend libvirt --connect URI). */
  readonly backend: () => string[];
  /** What else must be gone after a VM stopped (e.g. libvirt domains). */
  readonly noLeftovers?: () => Promise<void>;
}

/** Cloudlet B's base and overlay, for tests a backend adds beside the shared ones. */
export interface AcceptanceContext {
  readonly work: string;
  readonly homeA: string;
  readonly homeB: string;
  readonly id: string;
  readonly port: number;
  readonly overlay: string;
}

/**
 * Cloudlet A and B for a backend, in the enclosing describe's beforeAll: the tiny base made on A with `backend`'s
 * arguments, exported and imported on B; an overlay customized on A with the app script and a forward to a free
 * port (legacy -redir). The context is filled once that beforeAll ran; afterAll removes the folder.
 */
export function twoCloudlets(backend: () => string[], prefix: string): AcceptanceContext {
  const ctx = {} as AcceptanceContext;
  let work: string | undefined;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), prefix));
    const homeA = join(work, 'a');
    const homeB = join(work, 'b');
    await writeFile(join(work, 'ready.sh'), 'true\n');
    await writeFile(join(work, 'app.sh'), APP_SCRIPT);
    const made = await runCli([
      ...tinyBaseArgs(homeA, tinyVm()),
      ...backend(),
      '--script',
      join(work, 'ready.sh'),
    ]);
    expect(made.code, made.stderr).toBe(0);
    const id = /created base ([0-9a-f]{64})/.exec(made.stdout)?.[1] ?? '';
    expect(id).toHaveLength(64);
    expect((await runCli(['--home', homeA, 'export-base', id, join(work, 'base.zip')])).code).toBe(0);
    expect((await runCli(['--home', homeB, 'import-base', join(work, 'base.zip')])).code).toBe(0);
    const port = await freePort();
    const overlay = join(work, 'app.zip');
    const custom = await runCli([
      ...['--home', homeA, 'overlay', id, '-o', overlay, ...backend()],
      ...['--script', join(work, 'app.sh'), '--', '-redir', `tcp:${port}::80`],
    ]);
    expect(custom.code, custom.stderr).toBe(0);
    Object.assign(ctx, { work, homeA, homeB, id, port, overlay });
  });
  afterAll(() => (work === undefined ? undefined : rm(work, { recursive: true, force: true })));
  return ctx;
}

/** Registers the acceptance tests in the enclosing describe; the context is filled once its beforeAll ran. */
export function synthesisAcceptance(options: AcceptanceOptions): AcceptanceContext {
  const ctx = twoCloudlets(options.backend, 'cli-synthesis-');
  let work: string;
  let homeB: string;
  let id: string;
  let port: number;
  let overlay: string;
  beforeAll(() => {
    ({ work, homeB, id, port, overlay } = ctx); // the tests below read these
  });
  /** `cloudlet synthesis ARGS` on cloudlet B with the backend's arguments. */
  const synthesisOnB = (...args: string[]) =>
    runCli(['--home', homeB, 'synthesis', ...args, ...options.backend()]);
  /** Nothing of a VM left: no QEMU on B's files, no VM folder, and what the backend checks (libvirt domains). */
  const noLeftovers = async () => {
    expect(qemuMentioning(homeB)).toEqual([]);
    expect(await leftovers(homeB)).toEqual([]);
    await options.noLeftovers?.();
  };

  it('synthesizes from the file in the foreground until Ctrl-C, then stops it (--keep: the disk stays)', async () => {
    const args = ['--home', homeB, 'synthesis', id.slice(0, 12), overlay, '--keep', ...options.backend()];
    const { child, output, exited, seen } = spawnCli(args);
    try {
      await seen('press Ctrl-C');
      expect(output.text).toContain(`tcp 127.0.0.1:${port} -> guest 80`);
      expect(output.text).toMatch(/synthesized on base [0-9a-f]{12} in [0-9.]+ s/);
      await expectAppRunning(port);
    } finally {
      child.kill('SIGINT'); // what Ctrl-C sends; the CLI stops the VM and removes its folder
    }
    expect(await exited).toBe(0);
    expect(qemuMentioning(homeB)).toEqual([]);
    await options.noLeftovers?.();
    // --keep: only the VM's qcow2 is left, a valid image over the base disk.
    const kept = /kept the disk (\S+)/.exec(output.text)?.[1] ?? '';
    expect(kept).toMatch(/disk\.qcow2$/);
    expect(await readdir(join(kept, '..'))).toEqual(['disk.qcow2']);
    execFileSync('qemu-img', ['check', kept]);
    expect(execFileSync('qemu-img', ['info', kept]).toString()).toMatch(/backing file: .*disk\.raw/);
    await rm(join(kept, '..'), { recursive: true });
    expect(await leftovers(homeB)).toEqual([]);
  });

  it('synthesizes from an HTTP URL with Range reads, detached, and `cloudlet stop` ends it', async () => {
    const server = await serveFile(overlay);
    try {
      const run = await synthesisOnB(id, server.url, '--detach', '--json');
      expect(run.code, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout) as {
        workDir: string;
        pid: number;
        stats: { source: string; networkBytes: number };
        timings: Record<string, number>;
      };
      expect(result.stats.source).toBe('http-range');
      expect(server.requests.filter((r) => r.range?.startsWith('bytes=')).length).toBeGreaterThan(2);
      expect(result.timings.total).toBeGreaterThan(0);
      await expectAppRunning(port); // this test process never held the VM's sockets: it is detached
      const stop = await runCli(['--home', homeB, 'stop', result.workDir]);
      expect(stop.code, stop.stderr).toBe(0);
      await noLeftovers();
    } finally {
      await server.close();
    }
  });

  it('--early-start from a throttled URL: the app answers, the rest arrives, Ctrl-C unmounts and cleans up', async () => {
    const server = await serveFile(overlay, { bytesPerSecond: 2e6 });
    const { child, exited, seen } = spawnCli([
      '--home',
      homeB,
      'synthesis',
      id,
      server.url,
      '--early-start',
      ...options.backend(),
    ]);
    try {
      await seen('press Ctrl-C');
      await expectAppRunning(port);
      await seen('the whole overlay has arrived');
    } finally {
      child.kill('SIGINT');
      await server.close();
    }
    expect(await exited).toBe(0);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(homeB); // cloudletfs unmounted
    await noLeftovers();
  });

  it('falls back to one plain download from a server without Range support', async () => {
    const server = await serveFile(overlay, { range: false });
    try {
      const run = await synthesisOnB(id, server.url, '--detach', '--json');
      expect(run.code, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout) as { workDir: string; stats: { source: string } };
      expect(result.stats.source).toBe('http-download');
      await expectAppRunning(port);
      expect((await runCli(['--home', homeB, 'stop', result.workDir])).code).toBe(0);
      await noLeftovers();
    } finally {
      await server.close();
    }
  });

  describe('bad input: a clear error, no QEMU, no files', () => {
    async function refused(args: string[], message: RegExp): Promise<void> {
      const run = await synthesisOnB(...args);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /); // one line, no stack trace
      await noLeftovers();
    }

    it('an overlay for another base', async () => {
      await writeFile(join(work, 'other.sh'), 'echo other > /tmp/other\n');
      const made = await runCli([
        ...tinyBaseArgs(homeB, tinyVm()),
        ...options.backend(),
        '--script',
        join(work, 'other.sh'),
      ]);
      const other = /created base ([0-9a-f]{64})/.exec(made.stdout)?.[1] ?? '';
      expect(other).toHaveLength(64);
      await refused(
        [other, overlay],
        new RegExp(`overlay is for base ${id.slice(0, 12)}, not ${other.slice(0, 12)}`),
      );
    });

    it('an overlay whose base is not registered (the registered ones are listed)', async () => {
      const run = await runCli([
        '--home',
        join(work, 'empty'),
        'synthesis',
        id,
        overlay,
        ...options.backend(),
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /base "[0-9a-f]{64}" \(the overlay is for [0-9a-f]{12}\) is not registered; no base is registered here/,
      );
    });

    it('--vnc for a base made without a display', async () => {
      await refused([id, overlay, '--vnc'], /has no display: make it with `cloudlet base --vnc`/);
    });

    it('a corrupt segment (the error names it)', async () => {
      const entries = await readZip(overlay);
      const segment = entries.find((e) => e.name === 'segments/000001');
      if (segment === undefined) throw new Error('the overlay has no segment 1');
      const at = segment.data.length >> 1; // segments can be tiny: a disk segment of references is ~100 bytes
      segment.data[at] = (segment.data[at] ?? 0) ^ 0xff;
      await writeZip(join(work, 'corrupt.zip'), entries);
      await refused([id, join(work, 'corrupt.zip')], /segments\/000001.*sha256/);
    });

    it('a truncated download', async () => {
      await copyFile(overlay, join(work, 'cut.zip'));
      await truncate(join(work, 'cut.zip'), Math.floor((await readFile(overlay)).length * 0.6));
      const server = await serveFile(join(work, 'cut.zip'));
      try {
        await refused([id, server.url], /cut\.zip/);
      } finally {
        await server.close();
      }
    });

    it('an overlay whose memory layout does not match the base', async () => {
      const entries = await readZip(overlay);
      const manifest = entries.find((e) => e.name === 'manifest.json');
      if (manifest === undefined) throw new Error('no manifest');
      const json = JSON.parse(manifest.data.toString()) as { vm: { ramBlocks: { name: string }[] } };
      const block = json.vm.ramBlocks[0];
      if (block !== undefined) block.name = 'pc.ram.other';
      manifest.data = Buffer.from(JSON.stringify(json));
      await writeZip(join(work, 'layout.zip'), entries);
      await refused([id, join(work, 'layout.zip')], /memory layout differs from the base's at RAM block 0/);
    });

    it('the disk filling up while the VM is rebuilt (after the checks passed)', async () => {
      const small = join(work, 'filling');
      await mkdir(small);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', small]);
      // The first segment is asked for only after every check passed: before its first byte is sent,
      // something else takes the space (synchronously, in the server's own event loop: no race).
      let filled = false;
      const fill = (request: ServedRequest) => {
        if (filled || request.start === 0 || request.end - request.start <= 10_000) return;
        filled = true;
        try {
          execFileSync('dd', ['if=/dev/zero', `of=${join(small, 'hog')}`, 'bs=1M', 'count=64'], {
            stdio: 'ignore',
          });
        } catch {
          // dd stops at ENOSPC: the file system is now full, as intended
        }
      };
      const server = await serveFile(overlay, { beforeSlice: fill });
      try {
        const vmDir = join(small, 'vm');
        const run = runCli([
          '--home',
          homeB,
          'synthesis',
          id,
          server.url,
          '--work-dir',
          vmDir,
          ...options.backend(),
        ]);
        const result = await run;
        expect(filled).toBe(true);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(/the disk is full/);
        expect(result.stderr).not.toMatch(/\n\s+at /);
        expect(qemuMentioning(homeB)).toEqual([]);
        await options.noLeftovers?.();
        expect(await readdir(small)).toEqual(['hog']); // the VM's folder is gone
      } finally {
        await server.close();
        execFileSync('umount', [small]);
      }
    });

    it('a work folder on a file system too small for the disk', async () => {
      const small = join(work, 'small');
      await mkdir(small);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
      try {
        await refused([id, overlay, '--work-dir', join(small, 'vm')], /MB free, the rebuilt VM needs about/);
        expect(await readdir(small)).toEqual([]);
      } finally {
        execFileSync('umount', [small]);
      }
    });
  });
  return ctx;
}
