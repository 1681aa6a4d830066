// The libvirt daemons for tests: started here when none answers (no systemd), stopped by PID by the last
// test process that used them.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LibvirtDaemons, openLibvirtConnection, startLibvirtDaemons } from '../src/index.js';

export async function libvirtForTests(): Promise<LibvirtDaemons> {
  return startLibvirtDaemons({ dir: await mkdtemp(join(tmpdir(), 'cloudlet-libvirtd-')) });
}

/** Domains whose names this package gives (`cloudlet-…`), running or defined. */
export async function cloudletDomains(uri: string): Promise<string[]> {
  const conn = await openLibvirtConnection(uri);
  try {
    return (await conn.listDomains()).filter((name) => name.startsWith('cloudlet-'));
  } finally {
    await conn.close();
  }
}
