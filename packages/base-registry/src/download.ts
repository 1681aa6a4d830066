import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from './errors.js';
import { fsyncFile } from './fs-util.js';
import type { ProgressListener } from './progress.js';

export interface DownloadOptions {
  fetch: typeof globalThis.fetch;
  maxBytes: number;
  onProgress?: ProgressListener | undefined;
  signal?: AbortSignal | undefined;
}

/** Streams `url` into a new file, never holding more than a chunk in memory nor writing past maxBytes. */
export async function downloadTo(url: string, file: string, options: DownloadOptions): Promise<void> {
  let response: Response;
  try {
    response = await options.fetch(url, {
      redirect: 'follow',
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (e) {
    options.signal?.throwIfAborted();
    const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
    throw new RegistryError('download-failed', `cannot download ${url}: ${cause}`, { cause: e });
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel().catch(() => {});
    throw new RegistryError(
      'download-failed',
      `cannot download ${url}: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
    );
  }
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  const totalBytes = Number.isFinite(declared) ? declared : undefined;
  const tooLarge = () =>
    new RegistryError('too-large', `${url} is larger than the ${options.maxBytes}-byte import limit`);
  if (totalBytes !== undefined && totalBytes > options.maxBytes) {
    await response.body.cancel().catch(() => {});
    throw tooLarge();
  }
  let bytesDone = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, next) {
      bytesDone += chunk.length;
      if (bytesDone > options.maxBytes) return next(tooLarge());
      options.onProgress?.({
        stage: 'download',
        bytesDone,
        ...(totalBytes !== undefined ? { totalBytes } : {}),
      });
      next(null, chunk);
    },
  });
  try {
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
    await pipeline(body, limit, createWriteStream(file, { flags: 'wx' }));
    await fsyncFile(file);
  } catch (e) {
    options.signal?.throwIfAborted();
    if (e instanceof RegistryError) throw e;
    throw new RegistryError('download-failed', `download of ${url} failed: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (totalBytes !== undefined && bytesDone !== totalBytes)
    throw new RegistryError(
      'download-failed',
      `download of ${url} ended after ${bytesDone} of ${totalBytes} bytes`,
    );
}
