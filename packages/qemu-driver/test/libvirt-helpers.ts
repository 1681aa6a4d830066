// The libvirt daemons for tests: started here when none answers (no systemd), stopped by PID by the last
// test process that used them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LibvirtDaemons, openLibvirtConnection, startLibvirtDaemons } from '../src/index.js';

export async function libvirtForTests(): Promise<LibvirtDaemons> {
  const dir = await mkdtemp(join(tmpdir(), 'cloudlet-libvirtd-'));
  const daemons = await startLibvirtDaemons({ dir });
  return {
    ...daemons,
    // The logs go with the test process; a daemon it started and handed over still runs from its binary.
    stop: async () => {
      await daemons.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
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
