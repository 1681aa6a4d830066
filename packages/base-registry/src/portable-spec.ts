import { join } from 'node:path';
import { parseVmSpec, type VmSpec, VmSpecError } from '@cloudlet/qemu-driver';
import { RegistryError } from './errors.js';
import { BASE_FILES } from './layout.js';

/**
 * The spec as a base stores it: parsed (defaults applied, PCI slots and MACs pinned) and with every
 * file named by its fixed name inside the base folder, so the spec — and the id that hashes it —
 * does not depend on where the files were when the base was made, or which home holds it.
 */
export function portableSpec(input: unknown): VmSpec {
  const spec = parseSpec(input);
  const [disk, ...more] = spec.disks;
  if (disk === undefined || more.length > 0) {
    throw new RegistryError(
      'bad-spec',
      `a base VM has exactly one disk (disk.raw); the spec lists ${spec.disks.length}`,
    );
  }
  const portable: VmSpec = { ...spec, disks: [{ ...disk, file: BASE_FILES.disk, format: 'raw' }] };
  if (spec.kernel !== undefined) portable.kernel = BASE_FILES.kernel;
  if (spec.initrd !== undefined) portable.initrd = BASE_FILES.initrd;
  return parseSpec(portable);
}

function parseSpec(input: unknown): VmSpec {
  try {
    return parseVmSpec(input);
  } catch (e) {
    if (e instanceof VmSpecError) throw new RegistryError('bad-spec', e.message, { cause: e });
    throw e;
  }
}

/** A portable spec with its file names resolved against a base folder, ready for the driver. */
export function localSpec(spec: VmSpec, baseDir: string): VmSpec {
  const local: VmSpec = { ...spec, disks: spec.disks.map((d) => ({ ...d, file: join(baseDir, d.file) })) };
  if (spec.kernel !== undefined) local.kernel = join(baseDir, spec.kernel);
  if (spec.initrd !== undefined) local.initrd = join(baseDir, spec.initrd);
  return local;
}
