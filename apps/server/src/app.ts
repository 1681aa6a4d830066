// The HTTP face of a cloudlet: routing, validation, auth, limits — over the session manager and the registry.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { BaseInfo } from '@cloudlet/base-registry';
import type { RemoteBase, RemoteError, RemoteHealth, SessionEvent } from '@cloudlet/core';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ZodError, type z } from 'zod';
import { HttpError, toRemoteError } from './errors.js';
import {
  CreateFromUrlBody,
  EventsQuery,
  OPENAPI_PATH,
  openApiDocument,
  portsFromBody,
  portsFromQuery,
  SESSION_ID,
  UploadQuery,
} from './schemas.js';
import { createSessionManager, type SessionDeps, type SessionManager } from './sessions.js';
import { tooLarge } from './upload.js';

export const SERVER_VERSION = '0.1.0';

export interface AppOptions {
  /** Bearer token every endpoint but /health and the OpenAPI document requires; none: no auth. */
  readonly token?: string;
  /** pino level, or 'silent'. */
  readonly logLevel?: string;
  /** JSON request bodies (the URL form) larger than this are 413 (default 64 KiB). */
  readonly jsonBodyLimit?: number;
}

const OPEN_PATHS = new Set(['/health', OPENAPI_PATH]);
const UPLOAD_TYPES = ['application/zip', 'application/octet-stream'];

type StreamFormat = 'ndjson' | 'sse' | undefined;

function streamFormat(request: FastifyRequest, asked?: 'ndjson' | 'sse'): StreamFormat {
  if (asked !== undefined) return asked;
  const accept = request.headers.accept ?? '';
  if (accept.includes('application/x-ndjson')) return 'ndjson';
  if (accept.includes('text/event-stream')) return 'sse';
  return undefined;
}

function remoteBase(base: BaseInfo): RemoteBase {
  return {
    id: base.id,
    ...(base.label === undefined ? {} : { label: base.label }),
    createdAt: base.createdAt,
    diskBytes: base.diskBytes,
    memoryBytes: base.memoryBytes,
    qemuVersion: base.hostFacts.qemuVersion,
    machineType: base.hostFacts.machineType,
    cpuModel: base.hostFacts.cpuModel,
    memoryMiB: base.spec.memoryMiB,
    cpus: base.spec.vcpus,
    display: base.spec.display.type === 'none' ? 'none' : 'vnc',
  };
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new HttpError(400, 'bad-request', `invalid ${what}: ${issues}`);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Fastify's own refusals (content type, JSON, body size) in the API's error shape. */
function fromFastify(error: {
  code?: string;
  statusCode?: number;
  message: string;
}): RemoteError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        error: 'unsupported-media-type',
        message: `${error.message}; send application/json (a URL) or application/zip (the overlay)`,
        status: 415,
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { error: 'too-large', message: 'request body too large', status: 413 };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { error: 'bad-json', message: error.message, status: 400 };
    default:
      if (error instanceof SyntaxError) return { error: 'bad-json', message: error.message, status: 400 };
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)
        return { error: 'bad-request', message: error.message, status: error.statusCode };
      return undefined;
  }
}

function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  const remote = fromFastify(error as Error) ?? toRemoteError(error);
  if (error instanceof HttpError) reply.headers(error.headers);
  // 499 (client went away) is nginx's; on the wire a plain 400 is all a still-listening client can get.
  return reply.code(remote.status === 499 ? 400 : remote.status).send(remote);
}

/** Writes session events as NDJSON lines or SSE events until the last one; the request ends with it. */
function streamEvents(
  sessions: SessionManager,
  id: string,
  raw: ServerResponse,
  format: 'ndjson' | 'sse',
  status: number,
  closeAfter = false,
): void {
  raw.writeHead(status, {
    // An upload's answer may end before its body does (a refusal): one request per connection then.
    ...(closeAfter ? { connection: 'close' } : {}),
    'content-type': format === 'sse' ? 'text/event-stream' : 'application/x-ndjson',
    'cache-control': 'no-cache',
    'x-session-id': id,
    location: `/v1/sessions/${id}`,
  });
  let unsubscribe: (() => void) | undefined;
  let ended = false;
  const write = (event: SessionEvent) => {
    if (ended) return;
    raw.write(
      format === 'sse'
        ? `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
        : `${JSON.stringify(event)}\n`,
    );
    if (event.type !== 'progress') {
      ended = true;
      unsubscribe?.();
      raw.end();
    }
  };
  unsubscribe = sessions.subscribe(id, write);
  raw.once('close', () => {
    ended = true;
    unsubscribe?.();
  });
}

/** The final event of a session, for a client that waits for the answer instead of a stream. */
function finalEvent(sessions: SessionManager, id: string): Promise<SessionEvent> {
  return new Promise((resolve) => {
    let unsubscribe: (() => void) | undefined;
    let done = false;
    unsubscribe = sessions.subscribe(id, (event) => {
      if (event.type === 'progress' || done) return;
      done = true;
      unsubscribe?.();
      resolve(event);
    });
    if (done) unsubscribe?.();
  });
}

export interface CloudletApp {
  readonly app: FastifyInstance;
  readonly sessions: SessionManager;
  /** Closes every session (their VMs stop), then the HTTP server. */
  close(): Promise<void>;
}

export function createCloudletApp(deps: SessionDeps, options: AppOptions = {}): CloudletApp {
  const sessions = createSessionManager(deps);
  const started = performance.now();
  const app = Fastify({
    logger: { level: options.logLevel ?? 'info' },
    bodyLimit: options.jsonBodyLimit ?? 64 * 1024,
    requestTimeout: 0, // uploads may take long; the upload idle timeout guards them instead
    forceCloseConnections: true,
    return503OnClosing: true,
  });
  const tokenDigest = options.token === undefined ? undefined : digest(options.token);

  // An upload's body is handed over as the raw stream; the session reads it (and enforces the limits).
  app.addContentTypeParser(UPLOAD_TYPES, (_request, payload, done) => done(null, payload));

  app.addHook('onRequest', async (request, reply) => {
    if (tokenDigest === undefined || OPEN_PATHS.has(request.url.split('?')[0] ?? '')) return;
    const given = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (given !== undefined && timingSafeEqual(digest(given), tokenDigest)) return;
    reply.header('www-authenticate', 'Bearer realm="cloudlet"').header('connection', 'close');
    return sendError(
      reply,
      new HttpError(401, 'unauthorized', given === undefined ? 'a bearer token is required' : 'wrong token'),
    );
  });

  // Too large by its Content-Length: refused before a byte of it is read.
  app.addHook('onRequest', async (request, reply) => {
    const length = Number(request.headers['content-length'] ?? 0);
    if (request.method === 'POST' && length > deps.limits.maxOverlayBytes)
      return sendError(reply, tooLarge(deps.limits.maxOverlayBytes));
  });

  app.setErrorHandler((error, _request, reply) => {
    if (
      !(error instanceof HttpError) &&
      !(error instanceof ZodError) &&
      fromFastify(error as Error) === undefined
    )
      app.log.error(error);
    return sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new HttpError(404, 'not-found', `no route ${request.method} ${request.url}`)),
  );

  app.get(
    '/health',
    async (): Promise<RemoteHealth> => ({
      status: 'ok',
      version: SERVER_VERSION,
      uptime: Math.round((performance.now() - started) / 10) / 100,
      sessions: { active: sessions.activeCount(), max: deps.limits.maxSessions },
    }),
  );

  const document = openApiDocument(SERVER_VERSION);
  app.get(OPENAPI_PATH, async () => document);

  app.get('/v1/bases', async () => ({ bases: deps.registry.list().map(remoteBase) }));

  app.get('/v1/sessions', async () => ({ sessions: sessions.list() }));

  const sessionId = (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    if (!SESSION_ID.test(id))
      throw new HttpError(404, 'unknown-session', `no session ${id} on this cloudlet`);
    return id;
  };

  app.get('/v1/sessions/:id', async (request) => sessions.get(sessionId(request)));

  app.delete('/v1/sessions/:id', async (request) => sessions.close(sessionId(request)));

  app.get('/v1/sessions/:id/events', async (request, reply) => {
    const id = sessionId(request);
    const query = parse(EventsQuery, request.query, 'query');
    sessions.get(id); // 404 before the stream starts
    reply.hijack();
    streamEvents(sessions, id, reply.raw, streamFormat(request, query.format) ?? 'ndjson', 200);
  });

  app.post('/v1/sessions', async (request, reply) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    let id: string;
    if (UPLOAD_TYPES.includes(type)) {
      const query = parse(UploadQuery, request.query, 'query');
      const ports = portsFromQuery(query.port);
      const vnc = query.vnc === 'true' || query.vnc === '1';
      const earlyStart = query.earlyStart === 'true' || query.earlyStart === '1';
      id = sessions.fromUpload(request.body as Readable, {
        ...(query.base === undefined ? {} : { base: query.base }),
        ...(ports === undefined ? {} : { ports }),
        ...(vnc ? { vnc } : {}),
        ...(earlyStart ? { earlyStart } : {}),
        ...(query.earlyStartMemory === undefined ? {} : { earlyStartMemory: query.earlyStartMemory }),
      }).id;
    } else if (type === 'application/json') {
      const body = parse(CreateFromUrlBody, request.body, 'body');
      const ports = portsFromBody(body.ports);
      const session = sessions.fromUrl(body.url, {
        ...(body.base === undefined ? {} : { base: body.base }),
        ...(ports === undefined ? {} : { ports }),
        ...(body.vnc === undefined ? {} : { vnc: body.vnc }),
        ...(body.earlyStart === undefined ? {} : { earlyStart: body.earlyStart }),
        ...(body.earlyStartMemory === undefined ? {} : { earlyStartMemory: body.earlyStartMemory }),
      });
      id = session.id;
      if (!body.wait && streamFormat(request) === undefined)
        return reply.code(202).header('location', `/v1/sessions/${id}`).send(session);
    } else
      throw new HttpError(
        415,
        'unsupported-media-type',
        `Content-Type ${type || '(none)'}: send application/json (a URL) or application/zip (the overlay)`,
      );
    const format = streamFormat(request);
    if (format !== undefined) {
      reply.hijack();
      streamEvents(sessions, id, reply.raw, format, 201, UPLOAD_TYPES.includes(type));
      return;
    }
    const last = await finalEvent(sessions, id);
    if (last.type === 'ready')
      return reply.code(201).header('location', `/v1/sessions/${id}`).send(last.session);
    const error =
      last.type === 'failed'
        ? last.error
        : { error: 'closed', message: 'the session was closed', status: 410 };
    reply.header('x-session-id', id);
    if (UPLOAD_TYPES.includes(type)) reply.header('connection', 'close');
    return reply.code(error.status === 499 ? 400 : error.status).send(error);
  });

  return {
    app,
    sessions,
    async close() {
      await sessions.closeAll();
      await app.close();
    },
  };
}
