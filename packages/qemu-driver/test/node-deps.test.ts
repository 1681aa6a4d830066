import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectUnix, defaultDeps, listenUnix } from '../src/node-deps.js';

// The real socket/fs helpers: fast, no QEMU involved.
describe('node deps', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('makes a private run folder and removes it', async () => {
    const deps = defaultDeps();
    const dir = await deps.makeRunDir();
    dirs.push(dir);
    expect(dir).toMatch(/cloudlet-vm-/);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    await deps.removeDir(dir);
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it('fails to connect with ENOENT while nobody listens, then connects', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qd-test-'));
    dirs.push(dir);
    const path = join(dir, 's.sock');
    await expect(connectUnix(path)).rejects.toMatchObject({ code: 'ENOENT' });
    const listener = await listenUnix(path);
    const [client, server] = await Promise.all([connectUnix(path), listener.accept()]);
    // Closing the listener must not wait for accepted connections (the migration stream is still flowing).
    await listener.close();
    client.end('hello');
    const received = await new Promise<string>((resolve) => {
      let text = '';
      server.on('data', (chunk: Buffer) => (text += chunk.toString()));
      server.on('end', () => resolve(text));
    });
    expect(received).toBe('hello');
    server.destroy();
  });

  it('picks tcp and udp ports that can be bound right away', async () => {
    const deps = defaultDeps();
    const port = await deps.pickFreePort('tcp', '127.0.0.1');
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    server.close();
    expect(await deps.pickFreePort('udp', '127.0.0.1')).toBeGreaterThan(0);
  });
});
