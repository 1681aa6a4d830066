import type { Duplex } from 'node:stream';
import { type Clock, systemClock, withTimeout } from '../clock.js';
import { QmpClosedError, QmpError, QmpTimeoutError } from '../errors.js';
import { type QmpCommands, qmpCommands } from './commands.js';
import { createEventHub, type EventHub } from './event-hub.js';
import { createJsonLineParser } from './json-lines.js';
import type { QmpEvent, QmpGreeting } from './types.js';

export interface QmpClientOptions {
  readonly clock?: Clock;
  /** Default timeout of each command, in ms (30 s). */
  readonly timeoutMs?: number;
  /** How long to wait for the greeting and capabilities negotiation (10 s). */
  readonly handshakeTimeoutMs?: number;
}

export interface ExecuteOptions {
  readonly timeoutMs?: number;
}

/** A QMP connection after capabilities negotiation. Responses are matched to commands by id. */
export interface QmpClient extends QmpCommands {
  readonly greeting: QmpGreeting;
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options?: ExecuteOptions): Promise<T>;
  /** Calls `listener` for every event; returns the unsubscribe function. */
  onEvent(listener: (event: QmpEvent) => void): () => void;
  /** Events from now on, until the connection closes (or the iterator is returned). */
  events(): AsyncIterableIterator<QmpEvent>;
  /** The next event called `name` (for which `predicate` holds) that arrives after this call. */
  waitForEvent(name: string, predicate?: (event: QmpEvent) => boolean, timeoutMs?: number): Promise<QmpEvent>;
  /** Resolves when the connection is gone, whoever closed it. */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  readonly command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Connection {
  readonly hub: EventHub;
  readonly pending: Map<number, Pending>;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  greeting: Promise<QmpGreeting>;
}

const DEFAULT_TIMEOUT_MS = 30_000;

function isQmpErrorBody(value: unknown): value is { class: string; desc: string } {
  return typeof value === 'object' && value !== null && 'class' in value && 'desc' in value;
}

function settle(pending: Pending, message: Record<string, unknown>): void {
  if ('return' in message) pending.resolve(message.return);
  else if (isQmpErrorBody(message.error)) {
    pending.reject(new QmpError(pending.command, message.error.class, message.error.desc));
  } else pending.reject(new QmpError(pending.command, 'ProtocolError', JSON.stringify(message)));
}

/** Wires socket events to the pending-command map, the event hub and the greeting. */
function connect(socket: Duplex): Connection {
  const hub = createEventHub();
  const pending = new Map<number, Pending>();
  let closed = false;
  let onGreeting: (greeting: QmpGreeting) => void = () => {};
  let onGreetingLost: (error: Error) => void = () => {};
  const greeting = new Promise<QmpGreeting>((resolve, reject) => {
    onGreeting = resolve;
    onGreetingLost = reject;
  });
  greeting.catch(() => {}); // observed by createQmpClient; avoid unhandled rejections after close
  const parse = createJsonLineParser((message) => {
    if ('QMP' in message) onGreeting(message.QMP as QmpGreeting);
    else if ('event' in message) hub.emit(message as unknown as QmpEvent);
    else if (typeof message.id === 'number') {
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (waiter) settle(waiter, message);
    }
  });
  const closedPromise = new Promise<void>((resolve) => {
    const finish = () => {
      if (closed) return;
      closed = true;
      onGreetingLost(new QmpClosedError('the QMP greeting'));
      for (const waiter of pending.values()) waiter.reject(new QmpClosedError(waiter.command));
      pending.clear();
      hub.end();
      resolve();
    };
    socket.on('close', finish);
    socket.on('end', finish);
    socket.on('error', finish);
  });
  socket.on('data', parse);
  return { hub, pending, closed: closedPromise, isClosed: () => closed, greeting };
}

/**
 * Speaks QMP over `socket` (any duplex: a unix socket to QEMU, or a fake in tests): waits for the
 * greeting, negotiates capabilities, then returns the client.
 */
export async function createQmpClient(socket: Duplex, options: QmpClientOptions = {}): Promise<QmpClient> {
  const clock = options.clock ?? systemClock;
  const defaultTimeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const handshakeTimeout = options.handshakeTimeoutMs ?? 10_000;
  const conn = connect(socket);
  let nextId = 1;

  const execute = <T>(
    command: string,
    args?: Record<string, unknown>,
    opts: ExecuteOptions = {},
  ): Promise<T> => {
    if (conn.isClosed()) return Promise.reject(new QmpClosedError(command));
    const id = nextId++;
    const answer = new Promise<unknown>((resolve, reject) => {
      conn.pending.set(id, { command, resolve, reject });
    });
    socket.write(
      `${JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }), id })}\n`,
    );
    const timeoutMs = opts.timeoutMs ?? defaultTimeout;
    return withTimeout(clock, answer, timeoutMs, () => {
      conn.pending.delete(id); // a late answer is dropped
      return new QmpTimeoutError(command, timeoutMs);
    }) as Promise<T>;
  };

  const waitForEvent = (
    name: string,
    predicate: (event: QmpEvent) => boolean = () => true,
    timeoutMs = defaultTimeout,
  ) => {
    let unsubscribe = () => {};
    const found = new Promise<QmpEvent>((resolve, reject) => {
      unsubscribe = conn.hub.subscribe(
        (event) => {
          if (event.event === name && predicate(event)) resolve(event);
        },
        () => reject(new QmpClosedError(`event ${name}`)),
      );
    });
    const timed = withTimeout(clock, found, timeoutMs, () => new QmpTimeoutError(`event ${name}`, timeoutMs));
    return timed.finally(unsubscribe);
  };

  const close = async () => {
    if (!conn.isClosed()) socket.end();
    const destroyLater = clock.setTimeout(() => socket.destroy(), 1000);
    await conn.closed;
    clock.clearTimeout(destroyLater);
  };

  try {
    const greeting = await withTimeout(clock, conn.greeting, handshakeTimeout, () => {
      return new QmpTimeoutError('greeting', handshakeTimeout);
    });
    await execute('qmp_capabilities', undefined, { timeoutMs: handshakeTimeout });
    return {
      greeting,
      execute,
      onEvent: (listener) => conn.hub.subscribe(listener),
      events: () => conn.hub.iterate(),
      waitForEvent,
      closed: conn.closed,
      close,
      ...qmpCommands(execute),
    };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
