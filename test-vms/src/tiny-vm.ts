// Locates the tiny test VM built by `test-vms/tiny/build.sh` and checks it is complete and
// built from the current recipe, so tests never boot a half-built or outdated VM.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type TinyVmFile = 'vmlinuz' | 'initramfs.cpio.gz' | 'disk.raw';

/** `out/manifest.json`, written last by build.sh. */
export interface TinyVmManifest {
  schema: 1;
  recipeHash: string;
  kernel: { package: string; version: string };
  busybox: { package: string; version: string };
  append: string;
  files: Record<TinyVmFile, { sha256: string; bytes: number }>;
}

export interface TinyVm {
  /** Absolute paths. Never boot `disk` read-write: put a qcow2 overlay on it. */
  kernel: string;
  initrd: string;
  disk: string;
  /** Kernel command line to pass with `-append`. */
  append: string;
  memoryMiB: number;
  /** Shell prompt on ttyS0 once the VM is up (set in tiny/profile). */
  prompt: string;
  /** Static address set by tiny/init, for QEMU user networking. */
  guestIp: string;
  manifest: TinyVmManifest;
}

export interface TinyVmOptions {
  /** Folder holding the build outputs; default `<recipeDir>/out`. */
  outDir?: string;
  /** Folder holding build.sh, init, profile and diskroot/; default `test-vms/tiny`. */
  recipeDir?: string;
}

export class TestVmMissingError extends Error {
  override name = 'TestVmMissingError';
}

// Resolves to test-vms/tiny from both src/ (tests) and dist/ (built package).
const defaultRecipeDir = fileURLToPath(new URL('../tiny/', import.meta.url));
const FILES: readonly TinyVmFile[] = ['vmlinuz', 'initramfs.cpio.gz', 'disk.raw'];

/**
 * Hash of every recipe file, computed exactly like build.sh's `recipe_hash`:
 * sha256 of the `sha256sum` listing ("<hex>  <path>\n") of the byte-sorted paths.
 */
export function tinyRecipeHash(recipeDir: string = defaultRecipeDir): string {
  const diskroot = join(recipeDir, 'diskroot');
  const diskFiles = readdirSync(diskroot, { recursive: true, encoding: 'utf8' })
    .filter((p) => lstatSync(join(diskroot, p)).isFile())
    .map((p) => `diskroot/${p}`);
  // Default sort compares UTF-16 code units, which matches `LC_ALL=C sort` for ASCII names.
  const listing = ['build.sh', 'init', 'profile', ...diskFiles]
    .sort()
    .map((p) => `${sha256(readFileSync(join(recipeDir, p)))}  ${p}\n`)
    .join('');
  return sha256(Buffer.from(listing));
}

/** The tiny test VM; throws TestVmMissingError unless a complete, current build exists. */
export function tinyVm(options: TinyVmOptions = {}): TinyVm {
  const recipeDir = resolve(options.recipeDir ?? defaultRecipeDir);
  const outDir = resolve(options.outDir ?? join(recipeDir, 'out'));
  const manifestPath = join(outDir, 'manifest.json');

  let manifest: TinyVmManifest;
  try {
    manifest = parseManifest(readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw missing(`cannot read ${manifestPath}: ${(err as Error).message}`);
  }
  let recipeHash: string;
  try {
    recipeHash = tinyRecipeHash(recipeDir);
  } catch (err) {
    throw missing(`cannot read the recipe in ${recipeDir}: ${(err as Error).message}`);
  }
  if (manifest.recipeHash !== recipeHash) {
    throw missing(
      `${outDir} is stale: built from recipe ${manifest.recipeHash.slice(0, 12)}, now ${recipeHash.slice(0, 12)}`,
    );
  }
  // A size check is cheap and catches a file replaced or truncated after the build.
  for (const f of FILES) {
    const path = join(outDir, f);
    const bytes = statSync(path, { throwIfNoEntry: false })?.size;
    if (bytes !== manifest.files[f].bytes) {
      throw missing(
        `${path} is ${bytes === undefined ? 'missing' : `${bytes} bytes, manifest says ${manifest.files[f].bytes}`}`,
      );
    }
  }
  return {
    kernel: join(outDir, 'vmlinuz'),
    initrd: join(outDir, 'initramfs.cpio.gz'),
    disk: join(outDir, 'disk.raw'),
    append: manifest.append,
    memoryMiB: 128,
    prompt: 'vm# ',
    guestIp: '10.0.2.15',
    manifest,
  };
}

function missing(why: string): TestVmMissingError {
  return new TestVmMissingError(`tiny test VM not built: run \`bash test-vms/tiny/build.sh\` (${why})`);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function parseManifest(text: string): TinyVmManifest {
  const m = JSON.parse(text) as Partial<TinyVmManifest>;
  const ok =
    m.schema === 1 &&
    typeof m.recipeHash === 'string' &&
    typeof m.append === 'string' &&
    typeof m.kernel?.package === 'string' &&
    typeof m.busybox?.version === 'string' &&
    FILES.every((f) => typeof m.files?.[f]?.bytes === 'number' && typeof m.files[f].sha256 === 'string');
  if (!ok) throw new Error('unexpected manifest format');
  return m as TinyVmManifest;
}
