import { createCloudletClient } from '@cloudlet/core';
import { expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { runCli } from '../../cli/test/run-cli.js';
import { startServer } from './server-process.js';

it('cloudlet discover lists a server advertising _cloudlet._tcp, with a URL that answers', async () => {
  const home = testTempDir('discover-');
  const name = `test-cloudlet-${process.pid}`;
  const server = await startServer(['--home', home, '--advertise', '--name', name]);
  try {
    const run = await runCli(['discover', '--timeout', '2500', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const found = (JSON.parse(run.stdout) as { name: string; url: string; port: number; txt: object }[]).find(
      (c) => c.name === name,
    );
    expect(found).toMatchObject({
      url: server.url,
      port: server.port,
      txt: { api: '/v1', auth: 'none', address: '127.0.0.1' },
    });
    expect((await createCloudletClient({ server: found?.url ?? '' }).health()).status).toBe('ok');
  } finally {
    expect(await server.stop()).toBe(0);
  }
}, 30_000);
