import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkSource } from './chunk-source.js';
import { fileChunkSource } from './chunk-source.js';
import { OverlayFormatError } from './errors.js';

export interface UploadSpoolOptions {
  spoolDir: string;
  maxBytes: number;
  idleTimeoutMs: number;
  onBytes?: ((received: number) => void) | undefined;
}

/**
 * A request body being written to a file, readable while it grows: a read waits until its bytes have
 * arrived, and `size()` until the body has ended.
 */
export interface UploadSpool extends ChunkSource {
  received(): number;
  /** Resolves with the byte count when the body has ended; rejects with the failure. */
  readonly ended: Promise<number>;
  /** Stops reading the body; this and later reads reject with `error`; removes the file. First error wins. */
  fail(error: OverlayFormatError): Promise<void>;
  /** The error the upload failed with, if it did. */
  failure(): OverlayFormatError | undefined;
  /** Renames the file to `path` (after the body has ended): closing then leaves it in place. */
  keep(path: string): Promise<void>;
  /** Stops the body if it is still arriving and removes the file unless kept. */
  close(): Promise<void>;
}

interface Waiter {
  end: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export async function spoolUpload(
  body: AsyncIterable<Uint8Array>,
  options: UploadSpoolOptions,
): Promise<UploadSpool> {
  let path = join(options.spoolDir, `.upload-${process.pid}-${randomBytes(4).toString('hex')}.zip.part`);
  const writer: FileHandle = await open(path, 'wx');
  const file = await fileChunkSource(path).catch(async (e: unknown) => {
    await writer.close();
    await rm(path, { force: true });
    throw e;
  });
  let received = 0;
  let endedAt: number | undefined;
  let failure: OverlayFormatError | undefined;
  let kept = false;
  let removed: Promise<void> | undefined;
  const waiters = new Set<Waiter>();
  let stop: (() => void) | undefined;
  const stopped = new Promise<'stopped'>((resolve) => {
    stop = () => resolve('stopped');
  });

  const wake = () => {
    for (const w of waiters) {
      if (failure !== undefined) w.reject(failure);
      else if (w.end <= received) w.resolve();
      else if (endedAt !== undefined)
        w.reject(
          new OverlayFormatError(
            'truncated',
            `the upload ended after ${endedAt} bytes; bytes up to ${w.end} were needed`,
          ),
        );
      else continue;
      waiters.delete(w);
    }
  };
  const arrived = (end: number) =>
    new Promise<void>((resolve, reject) => {
      waiters.add({ end, resolve, reject });
      wake();
    });

  const remove = () => {
    removed ??= (async () => {
      await writer.close().catch(() => {});
      await file.close?.().catch(() => {});
      if (!kept) await rm(path, { force: true });
    })();
    return removed;
  };
  const fail = async (error: OverlayFormatError) => {
    failure ??= error;
    stop?.();
    wake();
    await remove();
  };

  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      void fail(
        new OverlayFormatError(
          'timeout',
          `the upload sent no data for ${options.idleTimeoutMs} ms (${received} bytes received)`,
        ),
      );
    }, options.idleTimeoutMs);
  };

  const pump = async (): Promise<number> => {
    const iterator = body[Symbol.asyncIterator]();
    try {
      touch();
      for (;;) {
        const next = await Promise.race([iterator.next(), stopped]);
        if (next === 'stopped' || failure !== undefined) throw failure;
        if (next.done === true) break;
        touch();
        const chunk = next.value;
        if (received + chunk.length > options.maxBytes)
          throw new OverlayFormatError(
            'too-large',
            `the upload is larger than the ${options.maxBytes}-byte limit (${received + chunk.length} bytes so far)`,
          );
        await writer.write(chunk, 0, chunk.length, received);
        received += chunk.length;
        options.onBytes?.(received);
        wake();
      }
      endedAt = received;
      wake();
      return received;
    } catch (e) {
      const error =
        e instanceof OverlayFormatError
          ? e
          : new OverlayFormatError(
              'truncated',
              `the upload broke off after ${received} bytes (${(e as Error).message})`,
              { cause: e },
            );
      await fail(error);
      // A body blocked in next() would hold its socket open: end the iterator, and a stream outright.
      void Promise.resolve(iterator.return?.()).catch(() => {});
      (body as { destroy?: () => void }).destroy?.();
      throw failure ?? error;
    } finally {
      clearTimeout(timer);
    }
  };
  const ended = pump();
  ended.catch(() => {}); // observed by whoever awaits it; failures reach reads through `failure`

  return {
    received: () => received,
    failure: () => failure,
    ended,
    async size() {
      return ended;
    },
    async read(offset, length) {
      if (failure !== undefined) throw failure;
      if (offset < 0 || length < 0) throw new RangeError(`read of ${length} bytes at ${offset}`);
      await arrived(offset + length);
      if (failure !== undefined) throw failure;
      if (length === 0) return new Uint8Array(0);
      // A failure meanwhile closes the file: report that failure, not the closed descriptor.
      return file.read(offset, length).catch((e: unknown) => {
        throw failure ?? e;
      });
    },
    fail,
    async keep(to) {
      await ended;
      await rename(path, to);
      path = to;
      kept = true;
    },
    async close() {
      if (endedAt === undefined)
        await fail(new OverlayFormatError('aborted', 'the upload was closed before it ended'));
      await remove();
    },
  };
}
