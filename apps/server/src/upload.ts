// An overlay arriving as a request body. `streamingUpload` (the server's) is overlay-format's openOverlayUpload:
// the reader is there once the manifest at the front has arrived, so synthesis overlaps the upload.
// `spoolUpload` (spool the whole body, then open it) was the stand-in before it; same shape.
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  OverlayFormatError,
  type OverlayReader,
  openOverlay,
  openOverlayUpload,
} from '@cloudlet/overlay-format';
import { HttpError } from './errors.js';

export interface UploadOptions {
  readonly spoolDir: string;
  readonly maxBytes: number;
  /** No byte for this long ends the upload (408). */
  readonly idleTimeoutMs: number;
  /** Bytes received so far, after each chunk. */
  readonly onBytes?: (bytes: number) => void;
}

export interface OverlayUpload {
  /** The overlay, readable (here: once the whole body is in). */
  readonly reader: Promise<OverlayReader>;
  /** The whole body arrived: its size. Rejects with 413, 408 or 499 (client went away). */
  readonly done: Promise<number>;
  abort(reason?: unknown): void;
}

export type OpenUpload = (body: Readable, options: UploadOptions) => OverlayUpload;

export const tooLarge = (max: number) =>
  new HttpError(413, 'too-large', `the overlay is larger than this server's limit of ${max} bytes`, {
    connection: 'close',
  });

export const spoolUpload: OpenUpload = (body, options) => {
  const controller = new AbortController();
  const file = join(options.spoolDir, 'upload.zip');
  let received = 0;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(
      () =>
        controller.abort(
          new HttpError(408, 'upload-timeout', `no upload data for ${options.idleTimeoutMs} ms`, {
            connection: 'close',
          }),
        ),
      options.idleTimeoutMs,
    );
  };
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      armIdle();
      if (received > options.maxBytes) return callback(tooLarge(options.maxBytes));
      options.onBytes?.(received);
      callback(null, chunk);
    },
  });
  armIdle();
  const done = pipeline(body, counter, createWriteStream(file), { signal: controller.signal })
    .then(() => received)
    .catch(async (error: unknown) => {
      await rm(file, { force: true });
      if (controller.signal.aborted) throw controller.signal.reason;
      if (error instanceof HttpError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET')
        throw new HttpError(499, 'upload-aborted', `the client went away after ${received} bytes`);
      throw error;
    })
    .finally(() => clearTimeout(idle));
  const reader = done.then(() => openOverlay(file));
  // Whoever awaits only one of them must not leave the other's rejection unhandled.
  reader.catch(() => {});
  done.catch(() => {});
  return {
    reader,
    done,
    abort: (reason) => controller.abort(reason ?? new HttpError(499, 'aborted', 'the upload was abandoned')),
  };
};

/** The reader's upload errors as HTTP answers (the status a client can act on). */
function uploadError(error: unknown, maxBytes: number): unknown {
  if (!(error instanceof OverlayFormatError)) return error;
  switch (error.code) {
    case 'too-large':
      return new HttpError(413, 'too-large', `${error.message} (this server's limit is ${maxBytes} bytes)`, {
        connection: 'close',
      });
    case 'timeout':
      return new HttpError(408, 'upload-timeout', error.message, { connection: 'close' });
    case 'truncated':
      return new HttpError(499, 'upload-aborted', error.message);
    default:
      return error;
  }
}

export const streamingUpload: OpenUpload = (body, options) => {
  const maxBytes = options.maxBytes;
  // Giving up on the body must not destroy the request: the refusal still has to reach the client.
  const opened = openOverlayUpload(body.iterator({ destroyOnReturn: false }), {
    spoolDir: options.spoolDir,
    maxBytes,
    idleTimeoutMs: options.idleTimeoutMs,
    ...(options.onBytes === undefined ? {} : { onBytes: options.onBytes }),
  });
  const reader = opened.then(
    (upload) => upload.reader,
    (error: unknown) => {
      throw uploadError(error, maxBytes);
    },
  );
  const done = opened.then(async (upload) => {
    try {
      await upload.done;
    } catch (error) {
      throw uploadError(error, maxBytes);
    }
    return upload.bytesReceived();
  });
  reader.catch(() => {});
  done.catch(() => {});
  return {
    reader,
    done,
    abort: (reason) => {
      // The rest of the body is drained; the answer says Connection: close, which ends the socket after it.
      opened.then(
        (upload) => upload.abort(reason),
        () => {},
      );
      if (!body.readableEnded) body.resume();
    },
  };
};
