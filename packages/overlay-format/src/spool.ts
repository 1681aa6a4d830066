import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { OverlayFormatError } from './errors.js';
import { describeFailure } from './http-chunk-source.js';

export interface IdleTimeout {
  signal: AbortSignal;
  /** Progress: the `ms` start again. */
  touch(): void;
  clear(): void;
}

/** An abort signal that fires after `ms` without progress (a whole download may take far longer). */
export function idleTimeout(ms: number): IdleTimeout {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new DOMException('no data', 'TimeoutError')), ms);
  };
  touch();
  return { signal: controller.signal, touch, clear: () => clearTimeout(timer) };
}

export interface SpoolOptions {
  spoolDir: string;
  idle: IdleTimeout;
  onBytes?: ((bytesReceived: number, totalBytes: number | undefined) => void) | undefined;
  /** Refuse a body larger than this (by its Content-Length at once, else as it arrives). */
  maxBytes?: number | undefined;
}

/**
 * Streams `response`'s whole body into a new file in `spoolDir` and returns its path; the byte count
 * must match Content-Length when the server gave one. On any failure the file is removed.
 */
export async function spoolResponse(url: string, response: Response, options: SpoolOptions): Promise<string> {
  const length = response.headers.get('content-length');
  const expected = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
  const { maxBytes } = options;
  const tooLarge = (bytes: number | string) =>
    new OverlayFormatError('too-large', `${url} is ${bytes} bytes, over the limit of ${maxBytes} bytes`);
  if (maxBytes !== undefined && expected !== undefined && expected > maxBytes) {
    options.idle.clear();
    await response.body?.cancel().catch(() => {});
    throw tooLarge(expected);
  }
  const path = join(options.spoolDir, `.overlay-${process.pid}-${randomBytes(4).toString('hex')}.zip.part`);
  let received = 0;
  let overLimit = false;
  const count = async function* (chunks: AsyncIterable<Uint8Array>) {
    for await (const chunk of chunks) {
      options.idle.touch();
      received += chunk.length;
      if (maxBytes !== undefined && received > maxBytes) {
        overLimit = true;
        throw tooLarge(`more than ${maxBytes}`);
      }
      options.onBytes?.(received, expected);
      yield chunk;
    }
  };
  const file = createWriteStream(path, { flags: 'wx' });
  let fileError: unknown;
  file.on('error', (e) => {
    fileError ??= e;
  });
  try {
    if (response.body === null) throw new OverlayFormatError('truncated', `${url} sent no body`);
    const body = Readable.fromWeb(response.body as ReadableStream<Uint8Array>);
    await pipeline(body, count, file).catch((cause: unknown) => {
      if (fileError !== undefined) throw fileError; // the spool file (disk full, no such directory), not the network
      if (overLimit) throw cause;
      if (options.idle.signal.aborted)
        throw new OverlayFormatError('http-error', `GET ${url} failed: ${describeFailure(cause)}`, { cause });
      throw new OverlayFormatError(
        'truncated',
        `${url} broke off after ${received} of ${expected ?? 'an unknown number of'} bytes`,
        { cause },
      );
    });
    if (expected !== undefined && received !== expected)
      throw new OverlayFormatError(
        'truncated',
        `${url} sent ${received} of the ${expected} bytes its Content-Length announced`,
      );
    return path;
  } catch (error) {
    await rm(path, { force: true });
    throw error;
  } finally {
    options.idle.clear();
  }
}
