import { open } from 'node:fs/promises';
import { RegistryError } from './errors.js';
import { BASE_LIMITS } from './limits.js';

/** Image formats QEMU would otherwise guess, by the magic they start with (offset, bytes). */
const FOREIGN_FORMATS: readonly { name: string; at: number; magic: string }[] = [
  { name: 'qcow2', at: 0, magic: 'QFI\xfb' },
  { name: 'QED', at: 0, magic: 'QED\x00' },
  { name: 'VMDK', at: 0, magic: 'KDMV' },
  { name: 'VMDK (descriptor)', at: 0, magic: '# Disk DescriptorFile' },
  { name: 'VDI', at: 64, magic: '\x7f\x10\xda\xbe' },
  { name: 'VHDX', at: 0, magic: 'vhdxfile' },
  { name: 'VHD', at: 0, magic: 'conectix' },
  { name: 'LUKS', at: 0, magic: 'LUKS\xba\xbe' },
  { name: 'Parallels', at: 0, magic: 'WithoutFreeSpace' },
  { name: 'Parallels', at: 0, magic: 'WithouFreSpacExt' },
];

/** Names the image format the first bytes reveal, or undefined if they look like a raw disk. */
export function foreignImageFormat(head: Uint8Array): string | undefined {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  return FOREIGN_FORMATS.find((f) => buf.toString('latin1', f.at, f.at + f.magic.length) === f.magic)?.name;
}

/**
 * Refuses anything QEMU would not boot as the same raw disk: a missing or empty file, a size that is
 * not whole 512-byte sectors, a size beyond the limit, or a container format such as qcow2 (whose
 * bytes would then be indexed and diffed as if they were the guest's disk). Returns the size.
 */
export async function checkRawDisk(path: string, label = 'disk.raw'): Promise<number> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw new RegistryError('bad-disk', `${label}: cannot open (${(e as Error).message})`, { cause: e });
  }
  try {
    const { size, isFile } = await handle.stat().then((s) => ({ size: s.size, isFile: s.isFile() }));
    if (!isFile) throw new RegistryError('bad-disk', `${label} is not a regular file`);
    if (size === 0) throw new RegistryError('bad-disk', `${label} is empty`);
    if (size % 512 !== 0)
      throw new RegistryError(
        'bad-disk',
        `${label} is ${size} bytes, not a whole number of 512-byte sectors`,
      );
    if (size > BASE_LIMITS.maxDiskBytes)
      throw new RegistryError(
        'bad-disk',
        `${label} is ${size} bytes, above the ${BASE_LIMITS.maxDiskBytes}-byte limit`,
      );
    const head = Buffer.alloc(512);
    await handle.read(head, 0, head.length, 0);
    const format = foreignImageFormat(head);
    if (format !== undefined)
      throw new RegistryError('bad-disk', `${label} is not a raw disk image (looks like ${format})`);
    return size;
  } finally {
    await handle.close();
  }
}
