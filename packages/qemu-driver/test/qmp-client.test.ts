import { describe, expect, it } from 'vitest';
import { createQmpClient, QmpClosedError, QmpError, type QmpEvent, QmpTimeoutError } from '../src/index.js';
import { fakeClock } from './fakes/fake-clock.js';
import { fakeQmp, GREETING } from './fakes/fake-qmp.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await tick();
}

describe('createQmpClient', () => {
  it('reads the greeting and negotiates capabilities before returning', async () => {
    const qemu = fakeQmp();
    const qmp = await createQmpClient(qemu.socket);
    expect(qmp.greeting).toEqual(GREETING.QMP);
    expect(qemu.commands.map((c) => c.execute)).toEqual(['qmp_capabilities']);
  });

  it('sends one JSON line per command, with arguments and an id', async () => {
    const qemu = fakeQmp();
    const qmp = await createQmpClient(qemu.socket);
    await qmp.migrateSetParameters({ 'max-bandwidth': 17179869184 });
    await qmp.stop();
    expect(qemu.written.slice(-2)).toEqual([
      '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":17179869184},"id":2}\n',
      '{"execute":"stop","id":3}\n',
    ]);
  });

  it('matches responses to commands by id, even out of order', async () => {
    const qemu = fakeQmp();
    const held: unknown[] = [];
    qemu.handle('query-status', (_args, id) => {
      held.push(id);
      return undefined;
    });
    const qmp = await createQmpClient(qemu.socket);
    const first = qmp.execute<{ n: number }>('query-status');
    const second = qmp.execute<{ n: number }>('query-status');
    await until(() => held.length === 2);
    qemu.reply(held[1], { return: { n: 2 } });
    qemu.reply(held[0], { return: { n: 1 } });
    expect(await first).toEqual({ n: 1 });
    expect(await second).toEqual({ n: 2 });
  });

  it('handles answers split across chunks and several in one chunk', async () => {
    const qemu = fakeQmp();
    const ids: unknown[] = [];
    qemu.handle('query-status', (_args, id) => {
      ids.push(id);
      return undefined;
    });
    const qmp = await createQmpClient(qemu.socket);
    const a = qmp.queryStatus();
    const b = qmp.queryStatus();
    await until(() => ids.length === 2);
    const both = `{"return":{"status":"running","running":true},"id":${ids[0]}}\r\n{"return":{"status":"paused","running":false},"id":${ids[1]}}\r\n`;
    qemu.send(both.slice(0, 17));
    qemu.send(both.slice(17));
    expect((await a).status).toBe('running');
    expect((await b).status).toBe('paused');
  });

  it('turns a QMP error into a QmpError with class and desc', async () => {
    const qemu = fakeQmp();
    qemu.handle('migrate', () => ({
      error: {
        class: 'GenericError',
        desc: "Can't migrate the vm that was paused due to previous migration",
      },
    }));
    const qmp = await createQmpClient(qemu.socket);
    const error = await qmp.migrate('unix:/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error).toMatchObject({
      class: 'GenericError',
      command: 'migrate',
      desc: expect.stringContaining('paused'),
    });
    expect((error as Error).message).toContain('GenericError');
  });

  it('delivers events to listeners, iterators and waitForEvent', async () => {
    const qemu = fakeQmp();
    const qmp = await createQmpClient(qemu.socket);
    const seen: string[] = [];
    const unsubscribe = qmp.onEvent((event) => seen.push(event.event));
    const iterator = qmp.events();
    const completed = qmp.waitForEvent('MIGRATION', (e) => e.data.status === 'completed', 1000);
    qemu.event('STOP');
    qemu.event('MIGRATION', { status: 'active' });
    qemu.event('MIGRATION', { status: 'completed' });
    expect((await completed).data).toEqual({ status: 'completed' });
    expect((await iterator.next()).value).toMatchObject({
      event: 'STOP',
      timestamp: { seconds: 1, microseconds: 2 },
    });
    expect(((await iterator.next()).value as QmpEvent).data).toEqual({ status: 'active' });
    expect(seen).toEqual(['STOP', 'MIGRATION', 'MIGRATION']);
    unsubscribe();
    await iterator.return?.();
    qemu.event('RESUME');
    await tick();
    expect(seen).toHaveLength(3);
  });

  it('does not confuse events with answers', async () => {
    const qemu = fakeQmp();
    qemu.handle('stop', (_args, id) => {
      queueMicrotask(() => {
        qemu.event('STOP');
        qemu.reply(id, { return: {} });
      });
      return undefined;
    });
    const qmp = await createQmpClient(qemu.socket);
    await expect(qmp.stop()).resolves.toBeUndefined();
  });

  it('times out a command with QmpTimeoutError and ignores the late answer', async () => {
    const { clock, advance } = fakeClock();
    const qemu = fakeQmp();
    const ids: unknown[] = [];
    qemu.handle('query-migrate', (_args, id) => {
      ids.push(id);
      return undefined;
    });
    const qmp = await createQmpClient(qemu.socket, { clock, timeoutMs: 500 });
    const pending = qmp.queryMigrate().catch((e: unknown) => e);
    await until(() => ids.length === 1);
    advance(499);
    advance(1);
    const error = await pending;
    expect(error).toBeInstanceOf(QmpTimeoutError);
    expect(error).toMatchObject({ what: 'query-migrate', timeoutMs: 500 });
    qemu.reply(ids[0], { return: { status: 'completed' } });
    await expect(qmp.execute('query-status')).resolves.toEqual({});
  });

  it('times out waitForEvent', async () => {
    const { clock, advance } = fakeClock();
    const qemu = fakeQmp();
    const qmp = await createQmpClient(qemu.socket, { clock });
    const waiting = qmp.waitForEvent('SHUTDOWN', undefined, 100).catch((e: unknown) => e);
    advance(100);
    expect(await waiting).toBeInstanceOf(QmpTimeoutError);
  });

  it('times out when QEMU never greets', async () => {
    const { clock, advance } = fakeClock();
    const qemu = fakeQmp({ greet: false });
    const connecting = createQmpClient(qemu.socket, { clock, handshakeTimeoutMs: 50 }).catch(
      (e: unknown) => e,
    );
    advance(50);
    expect(await connecting).toBeInstanceOf(QmpTimeoutError);
    expect(qemu.socket.destroyed).toBe(true);
  });

  it('rejects pending commands, event waits and later commands when QEMU hangs up', async () => {
    const qemu = fakeQmp();
    qemu.handle('query-status', () => undefined);
    const qmp = await createQmpClient(qemu.socket);
    const pending = qmp.queryStatus().catch((e: unknown) => e);
    const event = qmp.waitForEvent('MIGRATION').catch((e: unknown) => e);
    const iterator = qmp.events();
    qemu.hangUp();
    expect(await pending).toBeInstanceOf(QmpClosedError);
    expect(await event).toBeInstanceOf(QmpClosedError);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    await qmp.closed;
    await expect(qmp.cont()).rejects.toBeInstanceOf(QmpClosedError);
  });

  it('rejects when the connection closes before the greeting', async () => {
    const qemu = fakeQmp({ greet: false });
    const connecting = createQmpClient(qemu.socket).catch((e: unknown) => e);
    qemu.hangUp();
    expect(await connecting).toBeInstanceOf(QmpClosedError);
  });

  it('treats a hang-up after quit as success', async () => {
    const qemu = fakeQmp();
    qemu.handle('quit', () => {
      queueMicrotask(() => qemu.hangUp());
      return undefined;
    });
    const qmp = await createQmpClient(qemu.socket);
    await expect(qmp.quit()).resolves.toBeUndefined();
  });

  it('closes cleanly', async () => {
    const qemu = fakeQmp();
    const qmp = await createQmpClient(qemu.socket);
    await qmp.close();
    await qmp.closed;
    await qmp.close(); // idempotent
  });

  it('skips lines that are not JSON objects', async () => {
    const qemu = fakeQmp({ greet: false });
    const connecting = createQmpClient(qemu.socket);
    qemu.send('garbage\r\n[1]\r\n');
    qemu.send(`${JSON.stringify(GREETING)}\r\n`);
    await expect(connecting).resolves.toBeDefined();
  });

  it('sends the typed helpers as the right commands', async () => {
    const qemu = fakeQmp();
    const qmp = await createQmpClient(qemu.socket);
    await qmp.cont();
    await qmp.migrateSetCapabilities([{ capability: 'events', state: true }]);
    await qmp.migrateIncoming('unix:/r/in.sock');
    await qmp.systemPowerdown();
    expect(qemu.commands.slice(1).map((c) => [c.execute, c.arguments])).toEqual([
      ['cont', undefined],
      ['migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] }],
      ['migrate-incoming', { uri: 'unix:/r/in.sock' }],
      ['system_powerdown', undefined],
    ]);
  });
});
