import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { type Clock, systemClock, withTimeout } from '../clock.js';
import { SerialClosedError, SerialTimeoutError } from '../errors.js';
import { createAnsiStripper } from './ansi.js';
import { commandLine, findCommandResult } from './markers.js';

export interface SerialConsoleOptions {
  readonly clock?: Clock;
  /** Default timeout for `waitFor` and `run`, in ms (30 s). */
  readonly timeoutMs?: number;
  /** Marker tags; unique per call. Injected by tests for predictable input. */
  readonly nextTag?: () => string;
}

export interface RunOptions {
  readonly timeoutMs?: number;
}

export interface CommandResult {
  readonly output: string;
  /** The command's exit status (`$?`). */
  readonly status: number;
}

/**
 * A shell on the guest's serial port. Output is cleaned (no ANSI sequences, no CR) before matching.
 * `waitFor` and `run` take turns; each consumes the output it matched, so a later call only sees newer text.
 */
export interface SerialConsole {
  /** Waits for text (or a regex match) in output not yet consumed; returns the output up to and including it. */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /**
   * Runs one shell command line and returns its output (stdout and stderr, without the trailing newline).
   * The command is wrapped as `echo __S<tag>''__; CMD; echo __E<tag>''__$?`, so it must not read stdin
   * and must not end in a `#` comment.
   */
  run(command: string, options?: RunOptions): Promise<string>;
  /** Like `run`, plus the exit status. */
  runWithStatus(command: string, options?: RunOptions): Promise<CommandResult>;
  /** Raw input to the guest, e.g. "\x03" for Ctrl-C. */
  write(data: string): void;
  /** The last `chars` characters of cleaned output, consumed or not. */
  tail(chars?: number): string;
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

interface Waiter {
  readonly find: (text: string) => { end: number; value: unknown } | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly description: string;
}

// Consumed output is dropped beyond this, keeping enough for error messages.
const KEEP_CONSUMED = 8192;
// A guest that prints while nobody waits must not grow the buffer forever; the oldest text goes first
// (serial.log in the run folder has all of it).
const MAX_BUFFERED = 1024 * 1024;

function findPattern(pattern: RegExp | string) {
  return (text: string) => {
    if (typeof pattern === 'string') {
      const at = text.indexOf(pattern);
      return at < 0 ? undefined : { end: at + pattern.length, value: undefined };
    }
    const match = new RegExp(pattern.source, pattern.flags.replace('g', '').replace('y', '')).exec(text);
    return match === null ? undefined : { end: match.index + match[0].length, value: undefined };
  };
}

export function createSerialConsole(socket: Duplex, options: SerialConsoleOptions = {}): SerialConsole {
  const clock = options.clock ?? systemClock;
  const defaultTimeout = options.timeoutMs ?? 30_000;
  let tagCounter = 0;
  const nextTag = options.nextTag ?? (() => `${++tagCounter}x${Math.random().toString(36).slice(2, 7)}`);
  const decoder = new StringDecoder('utf8');
  const strip = createAnsiStripper();
  let text = '';
  let cursor = 0; // text before the cursor has been consumed by an earlier match
  let waiter: Waiter | undefined;
  let isClosed = false;
  let turn = Promise.resolve();

  const check = () => {
    if (!waiter) return;
    const found = waiter.find(text.slice(cursor));
    if (!found) return;
    const consumed = text.slice(cursor, cursor + found.end);
    cursor += found.end;
    if (cursor > 2 * KEEP_CONSUMED) {
      text = text.slice(cursor - KEEP_CONSUMED);
      cursor = KEEP_CONSUMED;
    }
    const { resolve } = waiter;
    waiter = undefined;
    resolve(found.value ?? consumed);
  };

  const tail = (chars = 2000) => text.slice(-chars);

  const closed = new Promise<void>((resolve) => {
    const finish = () => {
      if (isClosed) return;
      isClosed = true;
      waiter?.reject(new SerialClosedError(waiter.description, tail()));
      waiter = undefined;
      resolve();
    };
    socket.on('close', finish);
    socket.on('end', finish);
    socket.on('error', finish);
  });

  socket.on('data', (chunk: Buffer | string) => {
    text += strip(typeof chunk === 'string' ? chunk : decoder.write(chunk));
    if (text.length > MAX_BUFFERED) {
      const drop = text.length - MAX_BUFFERED / 2;
      text = text.slice(drop);
      cursor = Math.max(0, cursor - drop);
    }
    check();
  });

  /** Runs `fn` after every earlier waitFor/run has settled, so matches never interleave. */
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const result = turn.then(fn);
    turn = result.then(
      () => {},
      () => {},
    );
    return result;
  };

  const awaitMatch = <T>(find: Waiter['find'], description: string, timeoutMs: number, before?: () => void) =>
    exclusive(() => {
      if (isClosed) return Promise.reject(new SerialClosedError(description, tail()));
      const found = new Promise<unknown>((resolve, reject) => {
        waiter = { find, resolve, reject, description };
      });
      before?.();
      check();
      return withTimeout(clock, found, timeoutMs, () => {
        waiter = undefined;
        return new SerialTimeoutError(description, timeoutMs, tail());
      }) as Promise<T>;
    });

  const runWithStatus = (command: string, opts: RunOptions = {}) => {
    const tag = nextTag();
    const find = (window: string) => {
      const result = findCommandResult(window, tag);
      return result && { end: result.end, value: { output: result.output, status: result.status } };
    };
    const send = () => socket.write(commandLine(command, tag));
    return awaitMatch<CommandResult>(
      find,
      `output of ${JSON.stringify(command)}`,
      opts.timeoutMs ?? defaultTimeout,
      send,
    );
  };

  return {
    waitFor: (pattern, timeoutMs = defaultTimeout) =>
      awaitMatch<string>(findPattern(pattern), `match for ${String(pattern)}`, timeoutMs),
    run: async (command, opts) => (await runWithStatus(command, opts)).output,
    runWithStatus,
    write: (data) => {
      socket.write(data);
    },
    tail,
    closed,
    close: async () => {
      if (!isClosed) socket.end();
      const destroyLater = clock.setTimeout(() => socket.destroy(), 1000);
      await closed;
      clock.clearTimeout(destroyLater);
    },
  };
}
