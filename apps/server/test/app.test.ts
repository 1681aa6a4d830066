// Routing, validation, auth, limits and session bookkeeping of cloudlet-server, over fakes of synthesize(),
// the registry and the session store (no QEMU).
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { BaseInfo, BaseRegistry, SessionRecord, SessionStore } from '@cloudlet/base-registry';
import {
  type SessionEvent,
  SynthesisError,
  type SynthesizedVm,
  type SynthesizeOptions,
} from '@cloudlet/core';
import type { OverlayReader } from '@cloudlet/overlay-format';
import { afterEach, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { type CloudletApp, createCloudletApp } from '../src/app.js';
import { recoverSessions } from '../src/recover.js';
import { DEFAULT_LIMITS, type Limits } from '../src/sessions.js';
import { type OpenUpload, spoolUpload } from '../src/upload.js';

const BASE_ID = 'ab'.repeat(32);
const TOKEN = 'secret';

function fakeStore(): SessionStore & { rows: Map<string, SessionRecord> } {
  const rows = new Map<string, SessionRecord>();
  return {
    rows,
    insert: (r) => rows.set(r.id, { ...r, updatedAt: r.createdAt }),
    update: (id, change) => {
      const row = rows.get(id);
      if (row !== undefined) rows.set(id, { ...row, ...change } as SessionRecord);
    },
    get: (id) => rows.get(id),
    list: (states) => [...rows.values()].filter((r) => states === undefined || states.includes(r.state)),
    prune: () => 0,
    close: () => {},
  };
}

function fakeReader(): OverlayReader {
  return {
    manifest: {
      base: { id: BASE_ID },
      vm: { spec: { nics: [{ portForwards: [{ proto: 'tcp', guestPort: 80, hostPort: 8080 }] }] } },
    },
    segments: [{ compressedBytes: 1000 }, { compressedBytes: 2000 }],
    close: async () => {},
  } as unknown as OverlayReader;
}

/** Reads the whole body (so disconnects and limits behave), then hands out a fake reader. */
const fakeUpload: OpenUpload = (body, options) => {
  let received = 0;
  const done = (async () => {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      options.onBytes?.(received);
    }
    return received;
  })();
  return { done, reader: done.then(fakeReader), abort: () => body.destroy() };
};

interface Harness {
  server: CloudletApp;
  store: ReturnType<typeof fakeStore>;
  calls: SynthesizeOptions[];
  stopped: string[];
  home: string;
}

let current: Harness | undefined;
afterEach(async () => {
  await current?.server.close();
  current = undefined;
});

async function harness(
  options: {
    limits?: Partial<Limits>;
    synthesize?: (o: SynthesizeOptions) => Promise<SynthesizedVm>;
    token?: string;
    isVmRunning?: () => boolean;
  } = {},
): Promise<Harness> {
  const home = testTempDir('server-unit-');
  const store = fakeStore();
  const calls: SynthesizeOptions[] = [];
  const stopped: string[] = [];
  const base = {
    id: BASE_ID,
    createdAt: '2026-01-01T00:00:00.000Z',
    diskBytes: 1,
    memoryBytes: 2,
    hostFacts: { qemuVersion: '7.2.0', machineType: 'pc-i440fx-7.2', cpuModel: 'qemu64' },
    spec: { memoryMiB: 128, vcpus: 1, display: { type: 'none' } },
  } as unknown as BaseInfo;
  const registry = { home, list: () => [base] } as unknown as BaseRegistry;
  const synthesize = async (o: SynthesizeOptions): Promise<SynthesizedVm> => {
    calls.push(o);
    if (options.synthesize !== undefined) return options.synthesize(o);
    return fakeVm(o);
  };
  const server = createCloudletApp(
    {
      registry,
      store,
      synthesize,
      stopDetachedSynthesis: async (dir) => {
        stopped.push(dir);
      },
      openUpload: fakeUpload,
      openUrl: async () => ({ reader: fakeReader(), close: async () => {} }),
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      forwardAddress: '127.0.0.1',
      log: () => {},
      isVmRunning: options.isVmRunning ?? (() => true),
      watchEveryMs: 10,
    },
    { logLevel: 'silent', ...(options.token === undefined ? {} : { token: options.token }) },
  );
  current = { server, store, calls, stopped, home };
  return current;
}

function fakeVm(o: SynthesizeOptions): SynthesizedVm {
  const workDir = o.workDir ?? '/nowhere';
  return {
    base: { id: BASE_ID },
    workDir,
    endpoints: {
      portForwards: (o.portForwards ?? []).map((f, i) => ({
        proto: f.proto ?? 'tcp',
        hostAddress: f.hostAddress ?? '127.0.0.1',
        hostPort: 40000 + i,
        guestPort: f.guestPort,
        nic: 0,
      })),
      serialSocket: '/run/serial.sock',
      serialLog: '/run/serial.log',
      qmpSocket: '/run/qmp.sock',
    },
    timings: { open: 0.1, check: 0.1, apply: 0.5, resume: 0.3, total: 1 },
    stop: async () => {},
    detach: async () => ({ pid: 4242, runDir: '/tmp/cloudlet-vm-x', workDir, disk: '', endpoints: {} }),
  } as unknown as SynthesizedVm;
}

const json = { 'content-type': 'application/json' };
const auth = { authorization: `Bearer ${TOKEN}` };

describe('routes', () => {
  it('health and the OpenAPI document need no token; everything else does (401 + WWW-Authenticate)', async () => {
    const { server } = await harness({ token: TOKEN });
    const { app } = server;
    expect((await app.inject('/health')).json()).toMatchObject({
      status: 'ok',
      sessions: { active: 0, max: 4 },
    });
    expect((await app.inject('/openapi.json')).json()).toMatchObject({ openapi: '3.1.0' });
    const missing = await app.inject('/v1/bases');
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(missing.json()).toMatchObject({ error: 'unauthorized', message: 'a bearer token is required' });
    const wrong = await app.inject({ url: '/v1/sessions', headers: { authorization: 'Bearer nope' } });
    expect(wrong.json()).toMatchObject({ error: 'unauthorized', message: 'wrong token' });
    const bases = await app.inject({ url: '/v1/bases', headers: auth });
    expect(bases.json()).toEqual({
      bases: [
        {
          id: BASE_ID,
          createdAt: '2026-01-01T00:00:00.000Z',
          diskBytes: 1,
          memoryBytes: 2,
          qemuVersion: '7.2.0',
          machineType: 'pc-i440fx-7.2',
          cpuModel: 'qemu64',
          memoryMiB: 128,
          cpus: 1,
          display: 'none',
        },
      ],
    });
  });

  it('a URL session: the overlay’s forwards on free host ports, detachable, answered when ready', async () => {
    const { server, calls, store } = await harness();
    const created = await server.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: json,
      payload: { url: 'http://example.org/app.zip' },
    });
    expect(created.statusCode).toBe(201);
    const session = created.json();
    expect(session).toMatchObject({
      state: 'ready',
      source: 'url',
      baseId: BASE_ID,
      overlayBytes: 3000,
      endpoints: {
        portForwards: [{ proto: 'tcp', hostAddress: '127.0.0.1', hostPort: 40000, guestPort: 80 }],
      },
    });
    expect(calls[0]).toMatchObject({
      detachable: true,
      portForwards: [{ proto: 'tcp', guestPort: 80, hostPort: 0, hostAddress: '127.0.0.1' }],
    });
    expect(store.rows.get(session.id)).toMatchObject({
      state: 'ready',
      qemuPid: 4242,
      runDir: '/tmp/cloudlet-vm-x',
    });
    expect((await server.app.inject(`/v1/sessions/${session.id}`)).json()).toMatchObject({ state: 'ready' });
  });

  it('an upload streams NDJSON progress (upload bytes, stages) ending with ready; ?port= picks guest ports', async () => {
    const { server, calls } = await harness();
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/sessions?port=22&port=udp:53',
      headers: { 'content-type': 'application/zip', accept: 'application/x-ndjson' },
      payload: Buffer.alloc(50_000),
    });
    expect(response.statusCode).toBe(201);
    expect(response.headers['content-type']).toBe('application/x-ndjson');
    const events = response.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as SessionEvent);
    expect(events[0]).toMatchObject({ type: 'progress', stage: 'upload' });
    expect(events.at(-1)).toMatchObject({ type: 'ready', session: { bytesReceived: 50_000 } });
    expect(calls[0]?.portForwards).toEqual([
      { proto: 'tcp', guestPort: 22, hostPort: 0, hostAddress: '127.0.0.1' },
      { proto: 'udp', guestPort: 53, hostPort: 0, hostAddress: '127.0.0.1' },
    ]);
  });

  it('SSE on request; the events of a ready session replay and end', async () => {
    const { server } = await harness();
    const created = await server.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: json,
      payload: { url: 'https://example.org/app.zip', ports: [80] },
    });
    const sse = await server.app.inject(`/v1/sessions/${created.json().id}/events?format=sse`);
    expect(sse.headers['content-type']).toBe('text/event-stream');
    expect(sse.body).toMatch(/^event: progress\ndata: \{/);
    expect(sse.body).toMatch(/event: ready\ndata: \{"type":"ready"/);
  });

  it('refuses bad requests with the reason', async () => {
    const { server } = await harness({ limits: { maxOverlayBytes: 1000 } });
    const post = (headers: Record<string, string>, payload: string | Buffer, url = '/v1/sessions') =>
      server.app.inject({ method: 'POST', url, headers, payload });
    expect((await post({ 'content-type': 'text/plain' }, 'x')).json()).toMatchObject({
      error: 'unsupported-media-type',
      status: 415,
    });
    expect((await post(json, '{"url":')).json()).toMatchObject({ error: 'bad-json', status: 400 });
    const extra = await post(json, JSON.stringify({ url: 'http://h/o.zip', colour: 'red' }));
    expect(extra.statusCode).toBe(400);
    expect(extra.json().message).toMatch(/colour/);
    expect((await post(json, JSON.stringify({ url: 'ftp://h/o.zip' }))).statusCode).toBe(400);
    expect((await post(json, JSON.stringify({ url: 'http://h/o.zip', ports: [0] }))).statusCode).toBe(400);
    expect((await post({ 'content-type': 'application/zip' }, 'x', '/v1/sessions?port=abc')).statusCode).toBe(
      400,
    );
    const big = await post({ 'content-type': 'application/zip' }, Buffer.alloc(2000));
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ error: 'too-large' });
    expect((await post(json, JSON.stringify({ url: `http://h/${'a'.repeat(70_000)}` }))).statusCode).toBe(
      413,
    );
    expect((await server.app.inject('/v1/sessions/0123456789ab')).json()).toMatchObject({
      error: 'unknown-session',
      status: 404,
    });
    expect((await server.app.inject({ method: 'DELETE', url: '/v1/sessions/x' })).statusCode).toBe(404);
    expect((await server.app.inject('/v1/sessions/x/events')).statusCode).toBe(404);
    expect((await server.app.inject('/nope')).statusCode).toBe(404);
  });

  it('a refusal of synthesis is its status and reason (unknown base → 409); nothing is left', async () => {
    const { server, store, home } = await harness({
      synthesize: async () => {
        throw new SynthesisError('unknown-base', 'base "abab" is not registered; no base is registered here');
      },
    });
    const refused = await server.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(10),
    });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({
      error: 'unknown-base',
      message: expect.stringMatching(/not registered/),
    });
    const id = refused.headers['x-session-id'] as string;
    expect(store.rows.get(id)).toMatchObject({ state: 'failed' });
    expect(await readdir(join(home, 'sessions'))).toEqual([]);
  });

  it('more sessions than the limit → 429 with Retry-After; a closed one frees its place', async () => {
    const { server } = await harness({ limits: { maxSessions: 1, retryAfterSeconds: 7 } });
    const url = { method: 'POST' as const, url: '/v1/sessions', headers: json };
    const first = await server.app.inject({ ...url, payload: { url: 'http://h/a.zip' } });
    const second = await server.app.inject({ ...url, payload: { url: 'http://h/b.zip' } });
    expect(second.statusCode).toBe(429);
    expect(second.headers['retry-after']).toBe('7');
    expect(second.json()).toMatchObject({ error: 'too-many-sessions' });
    await server.app.inject({ method: 'DELETE', url: `/v1/sessions/${first.json().id}` });
    expect((await server.app.inject({ ...url, payload: { url: 'http://h/c.zip' } })).statusCode).toBe(201);
  });

  it('close stops the detached VM and removes the folder; closing while creating aborts synthesis', async () => {
    let release: () => void = () => {};
    const { server, stopped, store } = await harness({
      synthesize: (o) =>
        new Promise((resolve, reject) => {
          o.signal?.addEventListener('abort', () => reject(o.signal?.reason));
          release = () => resolve(fakeVm(o));
        }),
    });
    const slow = await server.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: json,
      payload: { url: 'http://h/a.zip', wait: false },
    });
    expect(slow.statusCode).toBe(202);
    const id = slow.json().id as string;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closed = await server.app.inject({ method: 'DELETE', url: `/v1/sessions/${id}` });
    expect(closed.json()).toMatchObject({ state: 'failed', error: { error: 'closed' } });
    const ok = server.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: json,
      payload: { url: 'http://h/b' },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    const ready = (await ok).json();
    const dir = store.rows.get(ready.id)?.dir ?? '';
    expect(existsSync(dir)).toBe(true);
    expect(
      (await server.app.inject({ method: 'DELETE', url: `/v1/sessions/${ready.id}` })).json(),
    ).toMatchObject({
      state: 'closed',
    });
    expect(stopped).toEqual([join(dir, 'vm')]);
    expect(existsSync(dir)).toBe(false);
    expect(store.rows.get(ready.id)?.state).toBe('closed');
  });
});

describe('a VM that exits on its own', () => {
  it('ends its session (vm-exited), removes its folder and frees its place', async () => {
    let running = true;
    const { server, store } = await harness({ limits: { maxSessions: 1 }, isVmRunning: () => running });
    const post = () =>
      server.app.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: json,
        payload: { url: 'http://h/a' },
      });
    const session = (await post()).json();
    expect((await post()).statusCode).toBe(429);
    running = false;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await server.app.inject(`/v1/sessions/${session.id}`)).json()).toMatchObject({
      state: 'failed',
      error: { error: 'vm-exited' },
    });
    expect(existsSync(store.rows.get(session.id)?.dir ?? '')).toBe(false);
    expect(store.rows.get(session.id)?.state).toBe('failed');
    expect((await post()).statusCode).toBe(201);
  });
});

describe('spoolUpload', () => {
  it('413 beyond maxBytes, 408 after the idle timeout; the spool file is removed', async () => {
    const dir = testTempDir('spool-');
    const big = spoolUpload(Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), {
      spoolDir: dir,
      maxBytes: 1000,
      idleTimeoutMs: 5000,
    });
    await expect(big.done).rejects.toMatchObject({ status: 413, code: 'too-large' });
    const stalled = new PassThrough();
    stalled.write(Buffer.alloc(10));
    const idle = spoolUpload(stalled, { spoolDir: dir, maxBytes: 1000, idleTimeoutMs: 50 });
    await expect(idle.done).rejects.toMatchObject({ status: 408, code: 'upload-timeout' });
    const cut = new PassThrough();
    const broken = spoolUpload(cut, { spoolDir: dir, maxBytes: 1000, idleTimeoutMs: 5000 });
    cut.destroy();
    await expect(broken.done).rejects.toMatchObject({ status: 499, code: 'upload-aborted' });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('recoverSessions', () => {
  it('stops the QEMU of sessions whose server is gone, removes their folders and strays, keeps live ones', async () => {
    const home = testTempDir('recover-');
    const store = fakeStore();
    const dir = (id: string) => join(home, 'sessions', id);
    for (const id of ['dead', 'live', 'stray']) await mkdir(dir(id), { recursive: true });
    const row = { createdAt: 'x', source: 'upload', state: 'ready' as const };
    store.insert({
      ...row,
      id: 'dead',
      ownerPid: 11,
      dir: dir('dead'),
      qemuPid: 99,
      runDir: '/tmp/cloudlet-vm-1',
    });
    store.insert({ ...row, id: 'live', ownerPid: 12, dir: dir('live') });
    const stoppedVms: unknown[] = [];
    const report = await recoverSessions({
      home,
      store,
      stopDetachedVm: async (vm) => {
        stoppedVms.push(vm);
        return 'quit';
      },
      log: () => {},
      isAlive: (pid) => pid === 12,
    });
    expect(stoppedVms).toEqual([{ pid: 99, runDir: '/tmp/cloudlet-vm-1' }]);
    expect(report.sessions).toEqual([{ id: 'dead', qemu: 'quit' }]);
    expect(store.get('dead')?.state).toBe('cleaned');
    expect(store.get('live')?.state).toBe('ready');
    expect((await readdir(join(home, 'sessions'))).sort()).toEqual(['live']);
  });
});
