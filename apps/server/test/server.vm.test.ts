// cloudlet-server with real QEMU, loopback only. A base made on cloudlet A is exported and imported into the
// server's home B; an overlay customized on A (disk file, tmpfs file, running counter, httpd with a CGI page)
// is synthesized through the server by upload (CLI) and by URL (typed client); sessions run side by side on
// their own host ports; a broken upload, bad requests, a kill -9 and SIGTERM leave no QEMU and no files.
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSessionStore } from '@cloudlet/base-registry';
import {
  CloudletServerError,
  createCloudletClient,
  type RemoteSession,
  type SessionEvent,
} from '@cloudlet/core';
import { APP_SCRIPT, freePort, qemuMentioning, serveFile, tinyVm, until } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAppRunning } from '../../cli/test/app-running.js';
import { runCli, tinyBaseArgs } from '../../cli/test/run-cli.js';

const synthesisClient = fileURLToPath(new URL('../../cli/dist/synthesis-client.js', import.meta.url));

import { openFds, rssKiB, type ServerProcess, startServer } from './server-process.js';

const TOKEN = 'test-token-0123456789';

const guest80 = (s: RemoteSession) =>
  s.endpoints?.portForwards.find((f) => f.guestPort === 80)?.hostPort ?? 0;

/** A raw HTTP exchange, for requests the typed client would never send. */
function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('cloudlet-server (real QEMU, loopback)', () => {
  let work: string;
  let homeA: string;
  let homeB: string;
  let id: string;
  let overlay: string;
  let overlaySize: number;
  let overlayPort: number;
  let server: ServerProcess;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const client = () => createCloudletClient({ server: server.url, token: TOKEN });
  const sessionDirs = async () => readdir(join(homeB, 'sessions')).catch(() => [] as string[]);

  const start = async () =>
    startServer([
      '--home',
      homeB,
      '--token',
      TOKEN,
      '--max-sessions',
      '3',
      '--max-overlay-bytes',
      String(overlaySize + 4096),
      '--upload-idle-timeout',
      '3000',
    ]);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'server-vm-'));
    homeA = join(work, 'a');
    homeB = join(work, 'b');
    await writeFile(join(work, 'ready.sh'), 'true\n');
    await writeFile(join(work, 'app.sh'), APP_SCRIPT);
    const made = await runCli([...tinyBaseArgs(homeA, tinyVm()), '--script', join(work, 'ready.sh')]);
    id = /created base ([0-9a-f]{64})/.exec(made.stdout)?.[1] ?? '';
    expect(id, made.stderr).toHaveLength(64);
    expect((await runCli(['--home', homeA, 'export-base', id, join(work, 'base.zip')])).code).toBe(0);
    expect((await runCli(['--home', homeB, 'import-base', join(work, 'base.zip')])).code).toBe(0);
    overlayPort = await freePort();
    overlay = join(work, 'app.zip');
    const args = ['--home', homeA, 'overlay', id, '-o', overlay, '--script', join(work, 'app.sh')];
    const custom = await runCli([...args, '--', '-redir', `tcp:${overlayPort}::80`]);
    expect(custom.code, custom.stderr).toBe(0);
    overlaySize = (await stat(overlay)).size;
    server = await start();
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('lists the imported base', async () => {
    const bases = await client().listBases();
    expect(bases.map((b) => b.id)).toEqual([id]);
    expect(bases[0]).toMatchObject({ memoryMiB: tinyVm().memoryMiB, display: 'none' });
  });

  it('synthesizes an uploaded overlay (cloudlet synthesis --server), session list, session close', async () => {
    const run = await runCli([
      'synthesis',
      '--server',
      `127.0.0.1:${server.port}`,
      '--token',
      TOKEN,
      overlay,
      '--detach',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const session = JSON.parse(run.stdout) as RemoteSession;
    expect(session).toMatchObject({
      state: 'ready',
      source: 'upload',
      baseId: id,
      bytesReceived: overlaySize,
    });
    const port = guest80(session);
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(overlayPort); // mapped to a free host port of this session
    await expectAppRunning(port);
    console.log(`upload session timings: ${JSON.stringify(session.timings)}`);
    const list = await runCli(['session', 'list', '--server', `127.0.0.1:${server.port}`, '--token', TOKEN]);
    expect(list.stdout).toContain(`${session.id}  ready`);
    expect(list.stdout).toContain(`127.0.0.1:${port}->80`);
    expect(qemuMentioning(homeB)).toHaveLength(1);
    const close = await runCli([
      'session',
      'close',
      session.id,
      '-s',
      `127.0.0.1:${server.port}`,
      '--token',
      TOKEN,
    ]);
    expect(close.stdout).toContain(`session ${session.id}: closed`);
    expect(qemuMentioning(homeB)).toEqual([]);
    expect(await sessionDirs()).toEqual([]);
    const row = openSessionStore({ home: homeB });
    expect(row.get(session.id)).toMatchObject({ state: 'closed', qemuPid: expect.any(Number) });
    row.close();
  });

  it('synthesizes from a URL the server fetches (typed client), with the progress stream', async () => {
    const files = await serveFile(overlay);
    try {
      const events: SessionEvent[] = [];
      const session = await client().synthesize({ overlay: files.url, onEvent: (e) => events.push(e) });
      expect(session).toMatchObject({ state: 'ready', source: 'url', url: files.url });
      expect(files.requests.filter((r) => r.range !== undefined).length).toBeGreaterThan(2);
      const stages = events.filter((e) => e.type === 'progress').map((e) => e.stage);
      expect(stages).toEqual(expect.arrayContaining(['open', 'check', 'apply', 'resume']));
      const apply = events.filter((e) => e.type === 'progress' && e.stage === 'apply').at(-1);
      expect(apply).toMatchObject({ bytesDone: expect.any(Number), mbPerSecond: expect.any(Number) });
      expect(events.at(-1)?.type).toBe('ready');
      await expectAppRunning(guest80(session));
      // The stream of a ready session replays its history and ends with ready.
      const replay: SessionEvent[] = [];
      for await (const e of client().events(session.id)) replay.push(e);
      expect(replay.at(-1)).toMatchObject({ type: 'ready', session: { id: session.id } });
      await client().closeSession(session.id);
      expect(qemuMentioning(homeB)).toEqual([]);
    } finally {
      await files.close();
    }
  });

  it('early start from a throttled URL: ready before the overlay has arrived, closing unmounts', async () => {
    const files = await serveFile(overlay, { bytesPerSecond: 2e6 });
    try {
      const session = await client().synthesize({ overlay: files.url, earlyStart: true });
      expect(session.state).toBe('ready');
      await expectAppRunning(guest80(session));
      await client().closeSession(session.id);
      expect(qemuMentioning(homeB)).toEqual([]);
      expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(homeB);
    } finally {
      await files.close();
    }
  });

  it('synthesis starts while the upload is still arriving (pipelined): apply progress before the last byte', async () => {
    const data = await readFile(overlay);
    const pieces = 16;
    const started = performance.now();
    const seen: { at: number; event: SessionEvent }[] = [];
    let lastByteAt = 0;
    const session = await new Promise<RemoteSession>((resolve, reject) => {
      const req = request(
        `${server.url}/v1/sessions`,
        {
          method: 'POST',
          headers: {
            ...auth,
            'content-type': 'application/zip',
            'content-length': data.length,
            accept: 'application/x-ndjson',
          },
        },
        (res) => {
          let pending = '';
          res.on('data', (chunk: Buffer) => {
            pending += chunk.toString();
            for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
              const event = JSON.parse(pending.slice(0, nl)) as SessionEvent;
              pending = pending.slice(nl + 1);
              seen.push({ at: performance.now() - started, event });
              if (event.type === 'ready') resolve(event.session);
              if (event.type === 'failed') reject(new Error(event.error.message));
            }
          });
        },
      );
      req.on('error', reject);
      void (async () => {
        const size = Math.ceil(data.length / pieces);
        for (let i = 0; i < pieces; i++) {
          req.write(data.subarray(i * size, (i + 1) * size));
          await new Promise((r) => setTimeout(r, 150));
        }
        lastByteAt = performance.now() - started;
        req.end();
      })();
    });
    const firstApply =
      seen.find((s) => s.event.type === 'progress' && s.event.stage === 'apply')?.at ?? Infinity;
    const ready = seen.at(-1)?.at ?? 0;
    console.log(
      `pipelining: ${data.length} bytes in ${pieces} pieces 150 ms apart; first apply progress at ${firstApply.toFixed(0)} ms, ` +
        `last byte sent at ${lastByteAt.toFixed(0)} ms, ready at ${ready.toFixed(0)} ms (${(ready - lastByteAt).toFixed(0)} ms after it)`,
    );
    expect(firstApply).toBeLessThan(lastByteAt);
    await expectAppRunning(guest80(session));
    await client().closeSession(session.id);
    expect(qemuMentioning(homeB)).toEqual([]);
  });

  it("synthesis_client -s HOST -p PORT -u URL (the seed's flags)", async () => {
    const files = await serveFile(overlay);
    try {
      const run = await runCli(
        ['-s', '127.0.0.1', '-p', String(server.port), '-u', files.url, '--detach', '--json'],
        { CLOUDLET_TOKEN: TOKEN },
        synthesisClient,
      );
      expect(run.code, run.stderr).toBe(0);
      const session = JSON.parse(run.stdout) as RemoteSession;
      await expectAppRunning(guest80(session));
      await client().closeSession(session.id);
    } finally {
      await files.close();
    }
  });

  it('runs two sessions at once, the same guest port on different host ports, both answering', async () => {
    const [a, b] = await Promise.all([
      client().synthesize({ overlay, ports: [80] }),
      client().synthesize({ overlay, ports: [{ guestPort: 80, proto: 'tcp' }] }),
    ]);
    if (a === undefined || b === undefined) throw new Error('two sessions expected');
    expect(guest80(a)).not.toBe(guest80(b));
    await Promise.all([expectAppRunning(guest80(a)), expectAppRunning(guest80(b))]);
    expect(qemuMentioning(homeB)).toHaveLength(2);
    expect((await client().health()).sessions).toEqual({ active: 2, max: 3 });
    await Promise.all([client().closeSession(a.id), client().closeSession(b.id)]);
    expect(qemuMentioning(homeB)).toEqual([]);
    expect(await sessionDirs()).toEqual([]);
  });

  it('a client going away mid-upload: the session is cleaned, no QEMU, the server still serves', async () => {
    const data = await readFile(overlay);
    const before = new Set((await client().listSessions()).map((s) => s.id));
    const req = request(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/zip', 'content-length': data.length },
    });
    req.on('error', () => {});
    req.write(data.subarray(0, Math.floor(data.length / 2)));
    const mine = async () => (await client().listSessions()).find((s) => !before.has(s.id));
    await until(async () => ((await mine())?.bytesReceived ?? 0) > 0, 'bytes');
    req.destroy();
    await until(async () => (await mine())?.state !== 'creating', 'the session to end');
    const broken = await mine();
    expect(broken?.state).toBe('failed');
    // The body ends early: the server sees the connection drop or the zip cut short, whichever comes first.
    expect(broken?.error?.error).toMatch(/^(upload-aborted|overlay-truncated)$/);
    expect(qemuMentioning(homeB)).toEqual([]);
    expect(await sessionDirs()).toEqual([]);
    expect((await client().health()).status).toBe('ok');
  });

  it('an upload that stalls is dropped after the idle timeout (408)', async () => {
    const data = await readFile(overlay);
    const answer = new Promise<number>((resolve) => {
      const req = request(
        `${server.url}/v1/sessions`,
        {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/zip', 'content-length': data.length },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => {});
      req.write(data.subarray(0, 1000)); // and then nothing
    });
    expect(await answer).toBe(408);
    expect(await sessionDirs()).toEqual([]);
  });

  describe('bad requests', () => {
    it('missing or wrong token → 401; /health and the OpenAPI document are open', async () => {
      expect((await rawRequest(`${server.url}/v1/bases`, {})).status).toBe(401);
      const wrong = await rawRequest(`${server.url}/v1/sessions`, {
        headers: { authorization: 'Bearer nope' },
      });
      expect(wrong.status).toBe(401);
      expect(wrong.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(JSON.parse(wrong.body)).toMatchObject({ error: 'unauthorized', message: 'wrong token' });
      expect((await rawRequest(`${server.url}/health`, {})).status).toBe(200);
      const doc = JSON.parse((await rawRequest(`${server.url}/openapi.json`, {})).body) as {
        paths: Record<string, unknown>;
      };
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          '/v1/bases',
          '/v1/sessions',
          '/v1/sessions/{id}',
          '/v1/sessions/{id}/events',
        ]),
      );
    });

    it('wrong content type → 415, invalid JSON → 400, bad fields → 400, oversize → 413, unknown session → 404', async () => {
      const post = (headers: Record<string, string | number>, body: string | Buffer) =>
        rawRequest(`${server.url}/v1/sessions`, { method: 'POST', headers: { ...auth, ...headers }, body });
      expect((await post({ 'content-type': 'text/plain' }, 'hello')).status).toBe(415);
      const badJson = await post({ 'content-type': 'application/json' }, '{"url": ');
      expect(badJson.status).toBe(400);
      expect(JSON.parse(badJson.body)).toMatchObject({ error: 'bad-json' });
      const badUrl = await post({ 'content-type': 'application/json' }, '{"url":"file:///etc/passwd"}');
      expect(badUrl.status).toBe(400);
      expect(JSON.parse(badUrl.body).message).toMatch(/url/);
      const bigJson = await post(
        { 'content-type': 'application/json' },
        JSON.stringify({ url: `http://x/${'a'.repeat(70_000)}` }),
      );
      expect(bigJson.status).toBe(413);
      const big = await post({ 'content-type': 'application/zip' }, Buffer.alloc(overlaySize + 8192));
      expect(big.status).toBe(413);
      expect(JSON.parse(big.body)).toMatchObject({ error: 'too-large' });
      expect((await rawRequest(`${server.url}/v1/sessions/0123456789ab`, { headers: auth })).status).toBe(
        404,
      );
      expect(
        (await rawRequest(`${server.url}/v1/sessions/nonsense`, { method: 'DELETE', headers: auth })).status,
      ).toBe(404);
      expect(await sessionDirs()).toEqual([]);
    });

    it('an overlay for a base this cloudlet does not have → 409 with the reason', async () => {
      const empty = await startServer(['--home', join(work, 'empty')]);
      try {
        const refused = await createCloudletClient({ server: empty.url })
          .synthesize({ overlay })
          .catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(CloudletServerError);
        expect(refused).toMatchObject({ status: 409, code: 'unknown-base' });
        expect((refused as Error).message).toMatch(/is not registered; no base is registered here/);
        expect(await readdir(join(work, 'empty', 'sessions')).catch(() => [])).toEqual([]);
      } finally {
        await empty.stop();
      }
    });

    it('more sessions than --max-sessions → 429 with Retry-After', async () => {
      const three = await Promise.all([1, 2, 3].map(() => client().synthesize({ overlay })));
      const fourth = await client()
        .synthesize({ overlay })
        .catch((e: unknown) => e);
      expect(fourth).toMatchObject({ status: 429, code: 'too-many-sessions', retryAfter: 30 });
      await Promise.all(three.map((s) => client().closeSession(s.id)));
      expect(qemuMentioning(homeB)).toEqual([]);
    });
  });

  it('200 list/health requests and 20 rejected oversize uploads leak no descriptors or memory', async () => {
    const get = (path: string) => fetch(`${server.url}${path}`, { headers: auth }).then((r) => r.text());
    for (let i = 0; i < 20; i++) await get(i % 2 === 0 ? '/v1/sessions' : '/health'); // warm up
    const fdsBefore = openFds(server.pid);
    const rssBefore = rssKiB(server.pid);
    for (let i = 0; i < 200; i++) await get(i % 2 === 0 ? '/v1/sessions' : '/health');
    const big = Buffer.alloc(overlaySize + 8192);
    for (let i = 0; i < 20; i++) {
      // Half refused by Content-Length up front, half streamed (chunked) past the limit.
      const headers: Record<string, string | number> = { ...auth, 'content-type': 'application/zip' };
      if (i % 2 === 0) headers['content-length'] = big.length;
      else headers['transfer-encoding'] = 'chunked';
      const answer = await rawRequest(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers,
        body: big,
      }).catch((e: unknown) => ({ status: -1, body: String(e) }));
      // A Content-Length above the limit is refused before the body is read; streamed zeros are refused as too
      // large or as not a zip, whichever the server sees first (a race between the byte count and the parser).
      expect(i % 2 === 0 ? [413, -1] : [413, 422, -1]).toContain(answer.status);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const fdsAfter = openFds(server.pid);
    const rssAfter = rssKiB(server.pid);
    console.log(`load test: fds ${fdsBefore} -> ${fdsAfter}, RSS ${rssBefore} KiB -> ${rssAfter} KiB`);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore + 3);
    expect(rssAfter - rssBefore).toBeLessThan(40 * 1024);
    expect(await sessionDirs()).toEqual([]);
  });

  it('killed with -9: the restarted server stops the orphaned QEMU and removes its files', async () => {
    const session = await client().synthesize({ overlay });
    await expectAppRunning(guest80(session));
    expect(await server.stop('SIGKILL')).toBe(null);
    expect(qemuMentioning(homeB)).toHaveLength(1); // detached: it outlived its server
    await expectAppRunning(guest80(session));
    server = await start();
    expect(server.output.text).toContain(`cleaned session ${session.id}`);
    await until(() => qemuMentioning(homeB).length === 0, 'the orphan QEMU to go');
    expect(await sessionDirs()).toEqual([]);
    const store = openSessionStore({ home: homeB });
    expect(store.get(session.id)?.state).toBe('cleaned');
    store.close();
    expect((await client().health()).sessions.active).toBe(0);
  });

  it('a VM that dies on its own ends its session (vm-exited) and its files go', async () => {
    const session = await client().synthesize({ overlay });
    const [qemu] = qemuMentioning(homeB);
    if (qemu === undefined) throw new Error('no QEMU');
    process.kill(qemu, 'SIGKILL');
    await until(async () => (await client().getSession(session.id)).state === 'failed', 'the session to end');
    expect((await client().getSession(session.id)).error).toMatchObject({ error: 'vm-exited' });
    expect(await sessionDirs()).toEqual([]);
    expect((await client().health()).sessions.active).toBe(0);
  });

  it('SIGTERM stops every session’s VM and exits 0', async () => {
    const session = await client().synthesize({ overlay });
    expect(guest80(session)).toBeGreaterThan(0);
    expect(qemuMentioning(homeB)).toHaveLength(1);
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(qemuMentioning(homeB)).toEqual([]);
    expect(await sessionDirs()).toEqual([]);
    server = await start();
  });

  it('copies of the overlay keep working after all that (the server still serves)', async () => {
    await copyFile(overlay, join(work, 'again.zip'));
    const session = await client().synthesize({ overlay: join(work, 'again.zip') });
    await expectAppRunning(guest80(session));
    await client().closeSession(session.id);
    expect(execFileSync('ps', ['-eo', 'args=']).toString()).not.toContain(join(homeB, 'sessions'));
  });
});
