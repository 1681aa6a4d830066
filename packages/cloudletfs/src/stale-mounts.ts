import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** /proc/self/mountinfo escapes spaces and the like as octal (\040). */
const unescapeOctal = (field: string) =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** cloudletfs mounts at or under `root`, from /proc/self/mountinfo. */
export async function cloudletMountsUnder(
  root: string,
  mountinfo = '/proc/self/mountinfo',
): Promise<string[]> {
  const base = resolve(root);
  const lines = (await readFile(mountinfo, 'utf8')).split('\n');
  const found: string[] = [];
  for (const line of lines) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const mountpoint = unescapeOctal(left.split(' ')[4] ?? '');
    const [fstype, source] = right.split(' ');
    const ours = fstype === 'fuse.cloudletfs' || source === 'cloudletfs';
    if (ours && (mountpoint === base || mountpoint.startsWith(base + sep))) found.push(mountpoint);
  }
  return found;
}

/**
 * Lazily unmounts what a crashed process left mounted under `root`: mounts whose FUSE daemon is gone, so
 * every access fails with ENOTCONN (live mounts are left alone); returns the mountpoints removed.
 */
export async function removeStaleMounts(root: string): Promise<string[]> {
  const stale: string[] = [];
  for (const mountpoint of await cloudletMountsUnder(root)) {
    if (!(await isDisconnected(mountpoint))) continue; // a live mount of another process
    await run('fusermount', ['-uz', mountpoint]);
    stale.push(mountpoint);
  }
  return stale;
}

async function isDisconnected(mountpoint: string): Promise<boolean> {
  try {
    await stat(mountpoint);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}
