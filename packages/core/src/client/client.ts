// A typed client for cloudlet-server: JSON endpoints over fetch, overlay uploads over node:http (a known
// Content-Length, and the server's progress stream read while the body is still going out).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  DEFAULT_SERVER_PORT,
  type RemoteBase,
  type RemoteError,
  type RemoteHealth,
  type RemotePortRequest,
  type RemoteSession,
  type SessionEvent,
} from './wire.js';

/** The server refused or failed a request; `code` is its stable error code, `status` the HTTP status. */
export class CloudletServerError extends Error {
  override readonly name = 'CloudletServerError';
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    /** Seconds, from Retry-After (429: too many sessions). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export interface CloudletClientOptions {
  /** `http://host:port`, or `host[:port]` (default port 8021). */
  readonly server: string;
  /** Bearer token, for a server started with `--token`. */
  readonly token?: string;
  readonly fetch?: typeof globalThis.fetch;
}

export interface RemoteSynthesisOptions {
  /** A local overlay zip to upload, or an http(s) URL the server fetches. */
  readonly overlay: string;
  readonly base?: string;
  readonly ports?: readonly RemotePortRequest[];
  readonly vnc?: boolean;
  /** Resume before the whole overlay has arrived (the server serves RAM and disk through cloudletfs). */
  readonly earlyStart?: boolean;
  /** With earlyStart: 'first' applies all memory before resuming (default 'on-demand'). */
  readonly earlyStartMemory?: 'on-demand' | 'first';
  /** Every event of the session's progress stream, as it arrives. */
  readonly onEvent?: (event: SessionEvent) => void;
  /** Gives up: an upload is cut off (the server then removes the session), a URL session is closed. */
  readonly signal?: AbortSignal;
}

export interface CloudletClient {
  /** The server's base URL, e.g. `http://127.0.0.1:8021`. */
  readonly url: string;
  health(): Promise<RemoteHealth>;
  listBases(): Promise<RemoteBase[]>;
  listSessions(): Promise<RemoteSession[]>;
  getSession(id: string): Promise<RemoteSession>;
  /** Stops the session's VM and removes its files. */
  closeSession(id: string): Promise<RemoteSession>;
  /** A session's progress stream from its start (replayed) to its end (ready, failed or closed). */
  events(id: string, options?: { signal?: AbortSignal }): AsyncIterable<SessionEvent>;
  /** Creates a session from an overlay file (uploaded) or URL; resolves when the VM runs, with its endpoints. */
  synthesize(options: RemoteSynthesisOptions): Promise<RemoteSession>;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** `host`, `host:port`, `[v6]:port` or a URL → `http://host:port` (no trailing slash). */
export function cloudletServerUrl(server: string, defaultPort = DEFAULT_SERVER_PORT): string {
  if (isUrl(server)) return server.replace(/\/+$/, '');
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(server);
  if (bracketed !== null) return `http://[${bracketed[1]}]:${bracketed[2] ?? defaultPort}`;
  const [host, port, ...more] = server.split(':');
  if (more.length > 0 || host === undefined || host === '')
    throw new TypeError(`"${server}" is not HOST[:PORT]`);
  if (port !== undefined && !/^\d+$/.test(port)) throw new TypeError(`"${server}": bad port "${port}"`);
  return `http://${host}:${port ?? defaultPort}`;
}

async function* ndjson(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SessionEvent> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of chunks) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line !== '') yield JSON.parse(line) as SessionEvent;
      newline = pending.indexOf('\n');
    }
  }
  if (pending.trim() !== '') yield JSON.parse(pending) as SessionEvent;
}

function serverError(status: number, text: string, retryAfter: string | null | undefined) {
  let body: Partial<RemoteError> = {};
  try {
    body = JSON.parse(text) as RemoteError;
  } catch {}
  const retry = retryAfter === null || retryAfter === undefined ? undefined : Number(retryAfter);
  return new CloudletServerError(
    body.error ?? `http-${status}`,
    body.message ?? (text.trim() || `HTTP ${status}`),
    status,
    retry !== undefined && Number.isFinite(retry) ? retry : undefined,
  );
}

/** Follows a progress stream to its end: the session once ready; a failed or closed session throws. */
async function untilReady(
  events: AsyncIterable<SessionEvent>,
  onEvent: ((event: SessionEvent) => void) | undefined,
): Promise<RemoteSession> {
  for await (const event of events) {
    onEvent?.(event);
    if (event.type === 'ready') return event.session;
    if (event.type === 'failed')
      throw new CloudletServerError(event.error.error, event.error.message, event.error.status);
    if (event.type === 'closed') throw new CloudletServerError('closed', 'the session was closed', 410);
  }
  throw new CloudletServerError('stream-ended', 'the progress stream ended before the VM was ready', 502);
}

const NDJSON = 'application/x-ndjson';

export function createCloudletClient(options: CloudletClientOptions): CloudletClient {
  const base = cloudletServerUrl(options.server);
  const doFetch = options.fetch ?? globalThis.fetch;
  const auth: Record<string, string> =
    options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };

  const unreachable = (error: unknown) => {
    if (error instanceof Error && error.name === 'AbortError') return error;
    const cause =
      error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : error;
    return new CloudletServerError('unreachable', `cannot reach the cloudlet at ${base}: ${cause}`, 0);
  };

  async function call(path: string, init: RequestInit = {}): Promise<Response> {
    const response = await doFetch(`${base}${path}`, {
      ...init,
      headers: { accept: 'application/json', ...auth, ...(init.headers as Record<string, string>) },
    }).catch((error: unknown) => {
      throw unreachable(error);
    });
    if (!response.ok)
      throw serverError(response.status, await response.text(), response.headers.get('retry-after'));
    return response;
  }
  const json = async <T>(path: string, init?: RequestInit) => (await (await call(path, init)).json()) as T;
  const sessionPath = (id: string) => `/v1/sessions/${encodeURIComponent(id)}`;

  async function* events(id: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<SessionEvent> {
    const response = await call(`${sessionPath(id)}/events`, {
      headers: { accept: NDJSON },
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    if (response.body === null) return;
    yield* ndjson(response.body as AsyncIterable<Uint8Array>);
  }

  async function fromUrl(o: RemoteSynthesisOptions): Promise<RemoteSession> {
    const body = {
      url: o.overlay,
      ...(o.base === undefined ? {} : { base: o.base }),
      ...(o.ports === undefined ? {} : { ports: o.ports }),
      ...(o.vnc === undefined ? {} : { vnc: o.vnc }),
      ...(o.earlyStart === undefined ? {} : { earlyStart: o.earlyStart }),
      ...(o.earlyStartMemory === undefined ? {} : { earlyStartMemory: o.earlyStartMemory }),
    };
    const response = await call('/v1/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: NDJSON },
      body: JSON.stringify(body),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
    const id = response.headers.get('x-session-id');
    try {
      return await untilReady(ndjson(response.body as AsyncIterable<Uint8Array>), o.onEvent);
    } catch (error) {
      if (o.signal?.aborted === true && id !== null) await closeSession(id).catch(() => {});
      throw error;
    }
  }

  async function upload(o: RemoteSynthesisOptions): Promise<RemoteSession> {
    const size = (await stat(o.overlay)).size;
    const query = new URLSearchParams();
    if (o.base !== undefined) query.set('base', o.base);
    for (const p of o.ports ?? [])
      query.append('port', typeof p === 'number' ? String(p) : `${p.proto ?? 'tcp'}:${p.guestPort}`);
    if (o.vnc === true) query.set('vnc', 'true');
    if (o.earlyStart === true) query.set('earlyStart', 'true');
    if (o.earlyStartMemory !== undefined) query.set('earlyStartMemory', o.earlyStartMemory);
    const target = new URL(`${base}/v1/sessions${query.size > 0 ? `?${query}` : ''}`);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(target, {
        method: 'POST',
        headers: { 'content-type': 'application/zip', 'content-length': size, accept: NDJSON, ...auth },
        ...(o.signal === undefined ? {} : { signal: o.signal }),
      });
      let answered = false;
      req.once('response', (res) => {
        answered = true;
        resolve(res);
      });
      // After an early answer (413, 429, a refused overlay) the rest of the body is not wanted.
      req.on('error', (error) => {
        if (!answered) reject(unreachable(error));
      });
      const file = createReadStream(o.overlay);
      file.once('error', (error) => req.destroy(error));
      file.pipe(req);
    });
    if ((response.statusCode ?? 500) >= 300) {
      let text = '';
      for await (const chunk of response) text += chunk;
      const retry = response.headers['retry-after'];
      throw serverError(response.statusCode ?? 500, text, Array.isArray(retry) ? retry[0] : retry);
    }
    return untilReady(ndjson(response), o.onEvent);
  }

  async function closeSession(id: string): Promise<RemoteSession> {
    return json<RemoteSession>(sessionPath(id), { method: 'DELETE' });
  }

  return {
    url: base,
    health: () => json<RemoteHealth>('/health'),
    listBases: async () => (await json<{ bases: RemoteBase[] }>('/v1/bases')).bases,
    listSessions: async () => (await json<{ sessions: RemoteSession[] }>('/v1/sessions')).sessions,
    getSession: (id) => json<RemoteSession>(sessionPath(id)),
    closeSession,
    events,
    synthesize: (o) => (isUrl(o.overlay) ? fromUrl(o) : upload(o)),
  };
}
