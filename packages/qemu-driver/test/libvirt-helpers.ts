// The libvirt daemons for tests: started here when none answers (no systemd), stopped by PID by the last
// test process that used them.
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type LibvirtDaemons, openLibvirtConnection, startLibvirtDaemons } from '../src/index.js';

const run = promisify(execFile);

/**
 * One log folder for every test process: the daemons one process starts serve the others after it left, and
 * libvirtd hands its log settings to each QEMU it starts (a removed folder makes QEMU's start fail, exit 125).
 */
const LOG_DIR = join(tmpdir(), 'cloudlet-libvirtd-logs');

export function libvirtForTests(): Promise<LibvirtDaemons> {
  return startLibvirtDaemons({ dir: LOG_DIR });
}

/**
 * Domains whose names this package gives (`cloudlet-…`), running or defined, and whose XML mentions `path`
 * (a test's own folder: test files running at once share the daemon, so each counts only its own domains).
 */
export async function cloudletDomains(uri: string, path: string): Promise<string[]> {
  const conn = await openLibvirtConnection(uri);
  let names: string[];
  try {
    names = (await conn.listDomains()).filter((name) => name.startsWith('cloudlet-'));
  } finally {
    await conn.close();
  }
  const xmlOf = (name: string) =>
    run('virsh', ['-c', uri, 'dumpxml', name]).then(
      (r) => r.stdout,
      () => '', // gone in between
    );
  const xmls = await Promise.all(names.map(xmlOf));
  return names.filter((_, i) => xmls[i]?.includes(path));
}
