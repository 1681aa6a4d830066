import { readFile, writeFile } from 'node:fs/promises';
import { ZipFile } from 'yazl';
import { compress } from 'zstd-napi';

export interface ZipMember {
  name: string;
  data?: Buffer;
  /** Unix mode (type bits included); default a regular file. */
  mode?: number;
  /** Deflate the member (packages must store members). */
  deflate?: boolean;
  directory?: boolean;
}

/**
 * Writes a zip with exactly these members, for crafting bad packages. yazl refuses unsafe names, so
 * a member may be written under a same-length placeholder and renamed in the bytes afterwards.
 */
export async function writeZip(
  file: string,
  members: ZipMember[],
  rename: [string, string][] = [],
): Promise<void> {
  const zip = new ZipFile();
  const mtime = new Date('2025-01-01T00:00:00Z');
  for (const m of members) {
    if (m.directory) zip.addEmptyDirectory(m.name, { mtime });
    else
      zip.addBuffer(m.data ?? Buffer.alloc(0), m.name, {
        compress: m.deflate ?? false,
        mtime,
        mode: m.mode ?? 0o100644,
      });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  let bytes: Buffer = Buffer.concat(chunks);
  for (const [from, to] of rename) bytes = replaceAll(bytes, from, to);
  await writeFile(file, bytes);
}

function replaceAll(bytes: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('placeholder and name must have the same length');
  const needle = Buffer.from(from, 'latin1');
  const out = Buffer.from(bytes);
  for (let at = out.indexOf(needle); at >= 0; at = out.indexOf(needle, at + 1)) out.write(to, at, 'latin1');
  return out;
}

export const zst = (data: Buffer | string) => compress(typeof data === 'string' ? Buffer.from(data) : data);

/** The members of a package as written by exportBase, unpacked to raw bytes for tampering. */
export interface UnpackedPackage {
  manifest: Record<string, unknown> & { disk: { bytes: number }; memory: { bytes: number } };
  disk: Buffer;
  memory: Buffer;
}

/** Re-packs members the way exportBase does (stored, zstd inside). */
export async function writePackage(
  file: string,
  pkg: { manifest: unknown; disk: Buffer; memory: Buffer },
  extra: ZipMember[] = [],
): Promise<void> {
  await writeZip(file, [
    { name: 'base.json', data: Buffer.from(JSON.stringify(pkg.manifest, null, 2)) },
    { name: 'disk.raw.zst', data: zst(pkg.disk) },
    { name: 'memory.snap.zst', data: zst(pkg.memory) },
    ...extra,
  ]);
}

export async function unpackBase(paths: {
  manifest: string;
  disk: string;
  memory: string;
}): Promise<UnpackedPackage> {
  return {
    manifest: JSON.parse(await readFile(paths.manifest, 'utf8')),
    disk: await readFile(paths.disk),
    memory: await readFile(paths.memory),
  };
}
