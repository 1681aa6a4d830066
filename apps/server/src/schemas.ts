// Request validation (zod) and the OpenAPI document generated from the same schemas.
import { z } from 'zod';

export const SESSION_ID = /^[0-9a-f]{12}$/;

const baseId = z
  .string()
  .regex(/^[0-9a-fA-F]{4,64}$/, 'a base id or a prefix of at least 4 hex digits')
  .describe('the base (id or unique prefix) the overlay must be for; default the overlay’s own');

const PortRequest = z.union([
  z.number().int().min(1).max(65535),
  z.object({ guestPort: z.number().int().min(1).max(65535), proto: z.enum(['tcp', 'udp']).default('tcp') }),
]);

export const CreateFromUrlBody = z
  .object({
    url: z.url({ protocol: /^https?$/ }).describe('http(s) URL of the overlay zip; the server fetches it'),
    base: baseId.optional(),
    ports: z
      .array(PortRequest)
      .max(32)
      .optional()
      .describe('guest ports to forward, each to a free host port (default: the overlay’s forwards)'),
    vnc: z.boolean().optional().describe('require the base’s VNC display'),
    earlyStart: z
      .boolean()
      .optional()
      .describe('resume before the overlay has arrived: RAM and disk served through cloudletfs'),
    earlyStartMemory: z
      .enum(['on-demand', 'first'])
      .optional()
      .describe('with earlyStart: RAM fetched as touched (default) or all memory before resuming'),
    wait: z
      .boolean()
      .default(true)
      .describe('false: answer 202 at once (follow /v1/sessions/{id}/events); true: answer when ready'),
  })
  .strict();

const queryPort = z.string().regex(/^((tcp|udp):)?\d{1,5}$/, 'PORT or tcp:PORT / udp:PORT');

export const UploadQuery = z
  .object({
    base: baseId.optional(),
    port: z.union([queryPort, z.array(queryPort).max(32)]).optional(),
    vnc: z.enum(['true', 'false', '1', '0']).optional(),
    earlyStart: z.enum(['true', 'false', '1', '0']).optional(),
    earlyStartMemory: z.enum(['on-demand', 'first']).optional(),
  })
  .strict();

export const EventsQuery = z.object({ format: z.enum(['ndjson', 'sse']).optional() }).strict();

export type PortList = { guestPort: number; proto: 'tcp' | 'udp' }[];

export function portsFromBody(ports: z.output<typeof CreateFromUrlBody>['ports']): PortList | undefined {
  return ports?.map((p) => (typeof p === 'number' ? { guestPort: p, proto: 'tcp' } : p));
}

export function portsFromQuery(port: z.output<typeof UploadQuery>['port']): PortList | undefined {
  if (port === undefined) return undefined;
  return (Array.isArray(port) ? port : [port]).map((p) => {
    const [proto, guest] = p.includes(':') ? (p.split(':') as ['tcp' | 'udp', string]) : ['tcp' as const, p];
    return { proto, guestPort: Number(guest) };
  });
}

// Response shapes, for the document (the code builds them as @cloudlet/core's Remote* types).
const ErrorBody = z.object({
  error: z.string().describe('stable code, e.g. unknown-base, too-large, too-many-sessions'),
  message: z.string(),
  status: z.number().int(),
});
const Forward = z.object({
  proto: z.enum(['tcp', 'udp']),
  hostAddress: z.string(),
  hostPort: z.number().int(),
  guestPort: z.number().int(),
});
const Endpoints = z.object({
  portForwards: z.array(Forward),
  vncSocket: z.string().optional().describe('unix socket on the server'),
  serialSocket: z.string(),
  qmpSocket: z.string(),
});
const Stage = z.enum(['upload', 'download', 'open', 'check', 'apply', 'resume', 'ready']);
const Session = z.object({
  id: z.string(),
  state: z.enum(['creating', 'ready', 'closed', 'failed']),
  createdAt: z.string(),
  source: z.enum(['upload', 'url']),
  url: z.string().optional(),
  baseId: z.string().optional(),
  stage: Stage.optional(),
  bytesReceived: z.number(),
  overlayBytes: z.number().optional(),
  endpoints: Endpoints.optional(),
  timings: z
    .object({
      total: z.number(),
      upload: z.number().optional(),
      open: z.number(),
      check: z.number(),
      apply: z.number(),
      resume: z.number(),
    })
    .optional(),
  error: ErrorBody.optional(),
});
const Event = z.union([
  z.object({
    type: z.literal('progress'),
    stage: Stage,
    elapsed: z.number(),
    bytesDone: z.number().optional(),
    totalBytes: z.number().optional(),
    mbPerSecond: z.number().optional(),
    segmentsDone: z.number().optional(),
    segments: z.number().optional(),
  }),
  z.object({ type: z.literal('ready'), elapsed: z.number(), session: Session }),
  z.object({ type: z.literal('failed'), elapsed: z.number(), error: ErrorBody }),
  z.object({ type: z.literal('closed'), elapsed: z.number() }),
]);
const Base = z.object({
  id: z.string(),
  label: z.string().optional(),
  createdAt: z.string(),
  diskBytes: z.number(),
  memoryBytes: z.number(),
  qemuVersion: z.string(),
  machineType: z.string(),
  cpuModel: z.string(),
  memoryMiB: z.number(),
  cpus: z.number(),
  display: z.enum(['none', 'vnc']),
});
const Health = z.object({
  status: z.literal('ok'),
  version: z.string(),
  uptime: z.number(),
  sessions: z.object({ active: z.number(), max: z.number() }),
});

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
const json = (s: z.ZodType) => ({ 'application/json': { schema: schema(s) } });
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: json(ErrorBody) }]));
const stream = {
  'application/x-ndjson': { schema: schema(Event) },
  'text/event-stream': { schema: { type: 'string', description: 'SSE: event: <type>, data: <JSON event>' } },
};
const idParam = [
  { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: SESSION_ID.source } },
];

export const OPENAPI_PATH = '/openapi.json';

export function openApiDocument(version: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'cloudlet-server',
      version,
      description:
        'VM synthesis sessions: send an overlay (upload or URL), follow the progress, get the endpoints, close.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths: {
      '/health': {
        get: { security: [], summary: 'liveness and load', responses: { 200: { content: json(Health) } } },
      },
      [OPENAPI_PATH]: { get: { security: [], summary: 'this document', responses: { 200: {} } } },
      '/v1/bases': {
        get: {
          summary: 'the registered bases',
          responses: { 200: { content: json(z.object({ bases: z.array(Base) })) }, ...errors(401) },
        },
      },
      '/v1/sessions': {
        get: {
          summary: 'sessions of this server (active and recently ended)',
          responses: { 200: { content: json(z.object({ sessions: z.array(Session) })) }, ...errors(401) },
        },
        post: {
          summary: 'create a session: an overlay uploaded as the body, or a URL the server fetches',
          description:
            'Accept: application/x-ndjson or text/event-stream streams the progress in the response (the ' +
            'X-Session-Id header names the session at once); otherwise the answer comes when the VM runs.',
          parameters: [
            { name: 'base', in: 'query', schema: schema(baseId), description: 'uploads only' },
            {
              name: 'port',
              in: 'query',
              schema: { type: 'array', items: { type: 'string' } },
              description: 'uploads only: guest port to forward (PORT, tcp:PORT, udp:PORT), repeatable',
            },
            { name: 'vnc', in: 'query', schema: { type: 'string', enum: ['true', 'false'] } },
            { name: 'earlyStart', in: 'query', schema: { type: 'string', enum: ['true', 'false'] } },
            {
              name: 'earlyStartMemory',
              in: 'query',
              schema: { type: 'string', enum: ['on-demand', 'first'] },
            },
          ],
          requestBody: {
            required: true,
            content: {
              'application/zip': { schema: { type: 'string', format: 'binary' } },
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              ...json(CreateFromUrlBody),
            },
          },
          responses: {
            201: { description: 'the VM runs', content: { ...json(Session), ...stream } },
            202: { description: 'wait: false', content: json(Session) },
            ...errors(400, 401, 408, 409, 413, 415, 422, 429, 502, 507),
          },
        },
      },
      '/v1/sessions/{id}': {
        get: {
          parameters: idParam,
          responses: { 200: { content: json(Session) }, ...errors(401, 404) },
        },
        delete: {
          summary: 'close: stops the VM, removes its files',
          parameters: idParam,
          responses: { 200: { content: json(Session) }, ...errors(401, 404) },
        },
      },
      '/v1/sessions/{id}/events': {
        get: {
          summary: 'progress from the start (replayed) to ready, failed or closed',
          parameters: [
            ...idParam,
            { name: 'format', in: 'query', schema: { type: 'string', enum: ['ndjson', 'sse'] } },
          ],
          responses: { 200: { content: stream }, ...errors(401, 404) },
        },
      },
    },
  };
}
