import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestVmMissingError, tinyRecipeHash, tinyVm } from '../src/index.js';

const buildScript = fileURLToPath(new URL('../tiny/build.sh', import.meta.url));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tiny-vm-unit-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fake out/ folder: tiny stand-in files and a manifest describing them. */
function fakeOut(recipeHash: string, sizes = { vmlinuz: 3, 'initramfs.cpio.gz': 2, 'disk.raw': 1 }): string {
  const out = join(dir, 'out');
  mkdirSync(out);
  const files: Record<string, { sha256: string; bytes: number }> = {};
  for (const [name, bytes] of Object.entries(sizes)) {
    writeFileSync(join(out, name), 'x'.repeat(bytes));
    files[name] = { sha256: '0'.repeat(64), bytes };
  }
  const manifest = {
    schema: 1,
    recipeHash,
    kernel: { package: 'linux-image-test', version: '1' },
    busybox: { package: 'busybox-static', version: '1' },
    append: 'console=ttyS0',
    files,
  };
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest));
  return out;
}

describe('tinyVm', () => {
  it('throws TestVmMissingError with the build command when the out folder is missing', () => {
    const call = () => tinyVm({ outDir: join(dir, 'nope') });
    expect(call).toThrow(TestVmMissingError);
    expect(call).toThrow('tiny test VM not built: run `bash test-vms/tiny/build.sh`');
  });

  it('throws when the build is stale against the recipe', () => {
    expect(() => tinyVm({ outDir: fakeOut('f'.repeat(64)) })).toThrow(/stale/);
  });

  it('throws when an output does not match the manifest', () => {
    const out = fakeOut(tinyRecipeHash());
    rmSync(join(out, 'disk.raw'));
    expect(() => tinyVm({ outDir: out })).toThrow(TestVmMissingError);
  });

  it('returns absolute paths and the manifest for a complete build', () => {
    const out = fakeOut(tinyRecipeHash());
    const vm = tinyVm({ outDir: out });
    expect(vm).toMatchObject({
      kernel: join(out, 'vmlinuz'),
      initrd: join(out, 'initramfs.cpio.gz'),
      disk: join(out, 'disk.raw'),
      append: 'console=ttyS0',
      memoryMiB: 128,
      prompt: 'vm# ',
      guestIp: '10.0.2.15',
    });
    expect(vm.manifest.kernel.package).toBe('linux-image-test');
  });

  it('computes the same recipe hash as build.sh', () => {
    const fromScript = execFileSync('bash', [buildScript, '--recipe-hash'], { encoding: 'utf8' }).trim();
    expect(tinyRecipeHash()).toBe(fromScript);
  });
});
