// A mistaken URI or a daemon that is not running: one clear error naming the URI, nothing left behind.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLibvirtBackend, LibvirtBackendError } from '../src/index.js';

const spec = { memoryMiB: 64, nics: [{ portForwards: [{ guestPort: 80 }] }] };

describe('libvirt backend errors', () => {
  let runs: string;
  beforeAll(async () => {
    runs = await mkdtemp(join(tmpdir(), 'qd-lverr-'));
  });
  afterAll(() => rm(runs, { recursive: true, force: true }));

  it('a stopped daemon (no socket) names the URI and says to start libvirtd', async () => {
    const uri = 'qemu:///system?socket=/nonexistent/libvirt-sock';
    const error = await createLibvirtBackend({ uri })
      .launch(spec, { runDirParent: runs })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LibvirtBackendError);
    expect(error).toMatchObject({ code: 'connect', uri });
    expect((error as Error).message).toMatch(
      /cannot connect to libvirt at qemu:\/\/\/system\?socket=.*No such file/,
    );
    expect((error as Error).message).toMatch(/is libvirtd running/);
    expect(await readdir(runs)).toEqual([]);
  });

  it('a mistaken URI says what libvirt said about it', async () => {
    const error = await createLibvirtBackend({ uri: 'qemu+nosuch:///system' })
      .restore(spec, (async function* () {})(), { runDirParent: runs })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'LibvirtBackendError',
      code: 'connect',
      uri: 'qemu+nosuch:///system',
    });
    expect(await readdir(runs)).toEqual([]);
  });
});
