// `cloudlet overlay` and `cloudlet info-overlay` on a base made from the tiny VM: trimmed blocks stay out
// of the overlay (and --no-trim keeps them), the counts info-overlay prints add up, forwards travel inside.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOverlay } from '@cloudlet/overlay-format';
import { tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tinyBaseArgs } from './run-cli.js';

const TRIM_SCRIPT = [
  'dd if=/dev/urandom of=/mnt/big bs=1M count=16 2>/dev/null',
  'sync',
  'rm /mnt/big',
  'sync',
  'fstrim /mnt',
  'echo kept > /mnt/kept.txt && sync',
].join('\n');

interface Description {
  compressedBytes: number;
  spaces: Record<'memory' | 'disk', { chunks: number; kinds: Record<string, { count: number }> }>;
  segments: { records: number }[];
}

describe('cloudlet overlay / info-overlay', () => {
  let work: string;
  let home: string;
  let id: string;

  async function overlay(name: string, ...flags: string[]): Promise<Description> {
    const file = join(work, name);
    const made = await runCli([
      '--home',
      home,
      'overlay',
      id.slice(0, 10),
      '-o',
      file,
      '--script',
      join(work, 'trim.sh'),
      ...flags,
    ]);
    expect(made.stderr).toContain('guest$ fstrim /mnt');
    expect(made.code).toBe(0);
    const info = await runCli(['info-overlay', file, '--json']);
    expect(info.code).toBe(0);
    return JSON.parse(info.stdout) as Description;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-overlay-'));
    home = join(work, 'home');
    await writeFile(join(work, 'ready.sh'), 'true\n');
    await writeFile(join(work, 'trim.sh'), TRIM_SCRIPT);
    const made = await runCli([...tinyBaseArgs(home, tinyVm()), '--script', join(work, 'ready.sh')]);
    id = /created base ([0-9a-f]{64})/.exec(made.stdout)?.[1] ?? '';
    expect(id).toHaveLength(64);
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('leaves a written-then-trimmed 16 MiB file out of the overlay; counts add up; forwards travel inside', async () => {
    const trimmed = await overlay('trimmed.zip', '--', '-redir', 'tcp:0::80');
    console.log(`trimmed: ${trimmed.compressedBytes} bytes, ${trimmed.spaces.disk.chunks} disk chunks`);
    expect(trimmed.spaces.disk.chunks).toBeLessThan(200); // 16 MiB would be 4096 chunks
    expect(trimmed.compressedBytes).toBeLessThan(1024 * 1024);
    for (const space of ['memory', 'disk'] as const) {
      const kinds = Object.values(trimmed.spaces[space].kinds);
      expect(kinds.reduce((n, k) => n + k.count, 0)).toBe(trimmed.spaces[space].chunks);
    }
    const records = trimmed.segments.reduce((n, s) => n + s.records, 0);
    expect(records).toBe(trimmed.spaces.memory.chunks + trimmed.spaces.disk.chunks);

    const reader = await openOverlay(join(work, 'trimmed.zip'));
    try {
      let counted = 0;
      for await (const _ of reader.records()) counted++;
      expect(counted).toBe(records);
      expect(reader.manifest.vm.spec.nics[0]?.portForwards).toEqual([
        expect.objectContaining({ guestPort: 80 }),
      ]);
      expect(reader.manifest.base.id).toBe(id);
    } finally {
      await reader.close();
    }
  });

  it('--no-trim keeps the trimmed blocks', async () => {
    const kept = await overlay('untrimmed.zip', '--no-trim');
    console.log(`--no-trim: ${kept.compressedBytes} bytes, ${kept.spaces.disk.chunks} disk chunks`);
    expect(kept.spaces.disk.chunks).toBeGreaterThan(4000);
  });

  it('--free-memory checks that the guest zeroes freed pages (init_on_free=1)', async () => {
    const flags = ['-o', join(work, 'free.zip'), '--script', join(work, 'ready.sh'), '--free-memory'];
    const ok = await runCli(['--home', home, 'overlay', id.slice(0, 10), ...flags]);
    expect(ok.code).toBe(0);

    const plainHome = join(work, 'plain');
    const tiny = tinyVm();
    const plainArgs = tinyBaseArgs(plainHome, {
      ...tiny,
      append: tiny.append.replace(/\s*init_on_free=1/, ''),
    });
    const made = await runCli([...plainArgs, '--script', join(work, 'ready.sh')]);
    const plainId = /created base ([0-9a-f]{64})/.exec(made.stdout)?.[1] ?? '';
    const refused = await runCli(['--home', plainHome, 'overlay', plainId, ...flags]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^cloudlet: error: free guest pages would enter the overlay: boot the base VM with init_on_free=1/m,
    );
  });

  it('info-overlay refuses a file that is not an overlay, with one line', async () => {
    await writeFile(join(work, 'junk.zip'), 'not a zip');
    const result = await runCli(['info-overlay', join(work, 'junk.zip')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cloudlet: error: /);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
