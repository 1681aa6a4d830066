import { rm } from 'node:fs/promises';
import type { ChunkSource } from './chunk-source.js';
import { fileChunkSource } from './chunk-source.js';
import { OverlayFormatError } from './errors.js';
import {
  contentRangeTotal,
  createHttpChunkSource,
  type HttpChunkSourceOptions,
  httpRequest,
} from './http-chunk-source.js';
import { type IdleTimeout, idleTimeout, spoolResponse } from './spool.js';

export type OverlaySourceKind = 'file' | 'http-range' | 'http-download';
export type OverlaySource = ChunkSource & { readonly kind: OverlaySourceKind };

export interface OverlaySourceOptions extends HttpChunkSourceOptions {
  /** Where a server without Range support is downloaded to (a temp file, removed on close()). */
  spoolDir: string;
  /** The largest such download accepted (error 'too-large'); ranged reads fetch only what is asked for. */
  maxDownloadBytes?: number;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/**
 * A local path or an http(s) URL as a ChunkSource: ranged reads when the server honours Range, else
 * one plain GET of the whole overlay spooled into `spoolDir`. The caller closes it.
 */
export async function openOverlaySource(
  location: string,
  options: OverlaySourceOptions,
): Promise<OverlaySource> {
  const scheme = SCHEME.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) return openLocal(location);
  if (scheme !== 'http' && scheme !== 'https')
    throw new OverlayFormatError(
      'invalid-use',
      `cannot open overlay "${location}": ${scheme}:// is not supported (a local path, http:// or https://)`,
    );
  return openHttp(location, options);
}

async function openLocal(path: string): Promise<OverlaySource> {
  try {
    return { ...(await fileChunkSource(path)), kind: 'file' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new OverlayFormatError('not-found', `overlay file ${path} does not exist`, { cause: e });
  }
}

/**
 * Probes with `Range: bytes=0-0`. 206 (or 416 for an empty file) gives the size from Content-Range;
 * a 200 is the whole body already on its way, so that same response is the download: one GET, not two.
 */
async function openHttp(url: string, options: OverlaySourceOptions): Promise<OverlaySource> {
  const idle = idleTimeout(options.timeoutMs ?? 30_000);
  let response: Response;
  try {
    response = await httpRequest(url, options, { method: 'GET', range: 'bytes=0-0', signal: idle.signal });
  } catch (e) {
    idle.clear();
    throw e;
  }
  if (response.status === 200) return download(url, response, idle, options);
  try {
    if (response.status !== 206 && response.status !== 416)
      throw new OverlayFormatError('http-error', `GET ${url} answered HTTP ${response.status}`);
    // The probe's one byte is not worth reading (nor counting in onBytes).
    return { ...createHttpChunkSource(url, options, contentRangeTotal(response)), kind: 'http-range' };
  } finally {
    await response.body?.cancel().catch(() => {});
    idle.clear();
  }
}

async function download(
  url: string,
  response: Response,
  idle: IdleTimeout,
  options: OverlaySourceOptions,
): Promise<OverlaySource> {
  const path = await spoolResponse(url, response, {
    spoolDir: options.spoolDir,
    idle,
    onBytes: options.onBytes,
    maxBytes: options.maxDownloadBytes,
  });
  const file = await fileChunkSource(path).catch(async (e: unknown) => {
    await rm(path, { force: true });
    throw e;
  });
  return {
    kind: 'http-download',
    size: () => file.size(),
    read: (offset, length) => file.read(offset, length),
    async close() {
      await file.close?.();
      await rm(path, { force: true });
    },
  };
}
