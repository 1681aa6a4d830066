import type { ChunkSource } from './chunk-source.js';
import { OverlayFormatError } from './errors.js';

export interface HttpChunkSourceOptions {
  /** Injected for tests and for callers with their own agent; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Extra request headers (auth, tracing); Range and Accept-Encoding are set by the source. */
  headers?: Record<string, string>;
  /** Per request, covering headers and body; defaults to 30 s. */
  timeoutMs?: number;
  /**
   * Network bytes as they arrive: the running total of every response body this source read, and the
   * overlay's size once known (progress bars, MB/s).
   */
  onBytes?: (bytesReceived: number, totalBytes: number | undefined) => void;
}

const CONTENT_RANGE = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i;

/** One request with the source's headers; network failures become 'http-error'. */
export async function httpRequest(
  url: string,
  options: HttpChunkSourceOptions,
  request: { method: 'GET' | 'HEAD'; range?: string; signal: AbortSignal },
): Promise<Response> {
  // identity: a gzip-encoded answer would make Content-Range and the byte count disagree.
  const headers: Record<string, string> = { ...options.headers, 'accept-encoding': 'identity' };
  if (request.range !== undefined) headers.range = request.range;
  try {
    return await (options.fetch ?? globalThis.fetch)(url, {
      method: request.method,
      headers,
      signal: request.signal,
    });
  } catch (cause) {
    throw new OverlayFormatError('http-error', `${request.method} ${url} failed: ${describeFailure(cause)}`, {
      cause,
    });
  }
}

/** The total of a `Content-Range: bytes a-b/total` header, if it has one. */
export function contentRangeTotal(response: Response): number | undefined {
  const total = CONTENT_RANGE.exec(response.headers.get('content-range') ?? '')?.[3];
  return total === undefined || total === '*' ? undefined : Number(total);
}

/** An overlay on a web server that honours single byte ranges; one GET per read, the size fetched once. */
export function httpChunkSource(url: string, options: HttpChunkSourceOptions = {}): ChunkSource {
  return createHttpChunkSource(url, options);
}

/** `knownSize`: already learnt (openOverlaySource's probe), so size() sends nothing. */
export function createHttpChunkSource(
  url: string,
  options: HttpChunkSourceOptions,
  knownSize?: number,
): ChunkSource {
  const timeoutMs = options.timeoutMs ?? 30_000;
  let sizePromise: Promise<number> | undefined =
    knownSize === undefined ? undefined : Promise.resolve(knownSize);
  let total = knownSize;
  let received = 0;
  const count = (bytes: number) => {
    received += bytes;
    options.onBytes?.(received, total);
  };
  const request = (method: 'GET' | 'HEAD', range: string | undefined, signal: AbortSignal) =>
    httpRequest(url, options, { method, signal, ...(range !== undefined && { range }) });

  async function fetchSize(): Promise<number> {
    const signal = AbortSignal.timeout(timeoutMs);
    const response = await request('GET', 'bytes=0-0', signal);
    await response.body?.cancel(); // one byte at most, or the whole file from a server without Range
    const total = contentRangeTotal(response);
    // 416 carries `bytes */size` for an empty file; both it and 206 give the total without a second request.
    if ((response.status === 206 || response.status === 416) && total !== undefined) return total;
    if (!response.ok && response.status !== 416) throw statusError('GET', response.status);
    const head = await request('HEAD', undefined, signal);
    const length = head.headers.get('content-length');
    if (!head.ok) throw statusError('HEAD', head.status);
    if (length === null || !/^\d+$/.test(length))
      throw new OverlayFormatError(
        'http-error',
        `${url} gives no size (no Content-Range total or Content-Length)`,
      );
    return Number(length);
  }

  function statusError(method: string, status: number): OverlayFormatError {
    return new OverlayFormatError('http-error', `${method} ${url} answered HTTP ${status}`);
  }

  return {
    size() {
      sizePromise ??= fetchSize().then((size) => (total = size));
      // A failed attempt is not cached, so a transient outage does not poison the source.
      sizePromise.catch(() => {
        sizePromise = undefined;
      });
      return sizePromise;
    },

    async read(offset, length) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
        throw new RangeError(`bad read of ${length} bytes at ${offset} from ${url}`);
      if (length === 0) return new Uint8Array(0); // `bytes=n-(n-1)` is not a valid range
      const end = offset + length - 1;
      const signal = AbortSignal.timeout(timeoutMs);
      const response = await request('GET', `bytes=${offset}-${end}`, signal);
      if (response.status !== 206) await response.body?.cancel();
      if (response.status === 200)
        throw new OverlayFormatError(
          'no-range-support',
          `${url} answered without Range support (HTTP 200 with the whole body)`,
        );
      if (response.status === 416)
        throw new OverlayFormatError('truncated', `${url} has no bytes ${offset}-${end} (HTTP 416)`);
      if (response.status !== 206) throw statusError('GET', response.status);
      const match = CONTENT_RANGE.exec(response.headers.get('content-range') ?? '');
      const [gotStart, gotEnd] = [Number(match?.[1]), Number(match?.[2])];
      if (gotStart !== offset || !(gotEnd <= end)) {
        await response.body?.cancel();
        throw new OverlayFormatError(
          'http-error',
          `${url} answered Range bytes=${offset}-${end} with Content-Range ${match?.[0] ?? '(none)'}`,
        );
      }
      if (gotEnd < end) {
        await response.body?.cancel();
        throw new OverlayFormatError('truncated', `${url} ends at byte ${gotEnd + 1}, wanted ${end + 1}`);
      }
      return readBody(response, length, signal);
    },
  };

  /** Exactly `length` bytes or a typed error; a body cut short must not look like a short file silently. */
  async function readBody(response: Response, length: number, signal: AbortSignal): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let got = 0;
    try {
      if (response.body === null) throw new Error('no body');
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        if (got + chunk.length > length)
          throw new OverlayFormatError('http-error', `${url} sent more than the ${length} bytes asked for`);
        out.set(chunk, got);
        got += chunk.length;
        count(chunk.length);
      }
    } catch (cause) {
      if (cause instanceof OverlayFormatError) throw cause;
      if (signal.aborted)
        throw new OverlayFormatError('http-error', `GET ${url} failed: ${describeFailure(cause)}`, { cause });
      throw new OverlayFormatError('truncated', `${url} body broke off after ${got} of ${length} bytes`, {
        cause,
      });
    }
    if (got < length)
      throw new OverlayFormatError('truncated', `${url} sent ${got} of the ${length} bytes asked for`);
    return out;
  }
}

export function describeFailure(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : '';
    return `${cause.name === 'TimeoutError' ? 'timed out' : cause.message}${inner}`;
  }
  return String(cause);
}
