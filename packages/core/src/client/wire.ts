// The cloudlet-server HTTP API as data: what its endpoints answer and what its progress streams carry.
// The server validates against zod schemas that produce these shapes; the client parses into them.

/** A registered base, as `GET /v1/bases` lists it (enough for a client to check compatibility first). */
export interface RemoteBase {
  readonly id: string;
  readonly label?: string;
  readonly createdAt: string;
  readonly diskBytes: number;
  readonly memoryBytes: number;
  readonly qemuVersion: string;
  readonly machineType: string;
  readonly cpuModel: string;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly display: 'none' | 'vnc';
}

export type RemoteSessionState = 'creating' | 'ready' | 'closed' | 'failed';

/** `upload`: bytes arriving from the client; the others are synthesize()'s stages. */
export type RemoteStage = 'upload' | 'download' | 'open' | 'check' | 'apply' | 'resume' | 'ready';

export interface RemotePortForward {
  readonly proto: 'tcp' | 'udp';
  /** The address QEMU listens on, on the server (0.0.0.0: any of its addresses). */
  readonly hostAddress: string;
  readonly hostPort: number;
  readonly guestPort: number;
}

export interface RemoteEndpoints {
  readonly portForwards: readonly RemotePortForward[];
  /** Unix sockets on the server. */
  readonly vncSocket?: string;
  readonly serialSocket: string;
  readonly qmpSocket: string;
}

/** An error as every endpoint reports it; `error` is a stable code (e.g. `unknown-base`, `too-large`). */
export interface RemoteError {
  readonly error: string;
  readonly message: string;
  readonly status: number;
}

export interface RemoteTimings {
  /** Seconds from the request to the guest running, and per synthesize() stage. */
  readonly total: number;
  readonly upload?: number;
  readonly open: number;
  readonly check: number;
  readonly apply: number;
  readonly resume: number;
}

export interface RemoteSession {
  readonly id: string;
  readonly state: RemoteSessionState;
  readonly createdAt: string;
  readonly source: 'upload' | 'url';
  readonly url?: string;
  readonly baseId?: string;
  readonly stage?: RemoteStage;
  /** Overlay bytes received so far (upload or download). */
  readonly bytesReceived: number;
  readonly overlayBytes?: number;
  readonly endpoints?: RemoteEndpoints;
  readonly timings?: RemoteTimings;
  readonly error?: RemoteError;
}

export interface RemoteProgress {
  readonly type: 'progress';
  readonly stage: RemoteStage;
  /** Seconds since the session was created. */
  readonly elapsed: number;
  readonly bytesDone?: number;
  readonly totalBytes?: number;
  /** Rate of this stage so far, MB/s (10^6 bytes). */
  readonly mbPerSecond?: number;
  readonly segmentsDone?: number;
  readonly segments?: number;
}

/** What a session's progress stream carries, one per NDJSON line or SSE event; the last is ready/failed/closed. */
export type SessionEvent =
  | RemoteProgress
  | { readonly type: 'ready'; readonly elapsed: number; readonly session: RemoteSession }
  | { readonly type: 'failed'; readonly elapsed: number; readonly error: RemoteError }
  | { readonly type: 'closed'; readonly elapsed: number };

export interface RemoteHealth {
  readonly status: 'ok';
  readonly version: string;
  readonly uptime: number;
  readonly sessions: { readonly active: number; readonly max: number };
}

/** The guest ports to forward; the server maps each to a free host port of its own. */
export type RemotePortRequest = number | { readonly guestPort: number; readonly proto?: 'tcp' | 'udp' };

export interface CreateSessionRequest {
  /** An http(s) URL the server fetches the overlay from. */
  readonly url: string;
  /** The base (id or prefix) the overlay must be for; default the overlay's. */
  readonly base?: string;
  /** Default: the overlay's own forwards, each on a free host port. */
  readonly ports?: readonly RemotePortRequest[];
  /** Require a VNC display (a base made with one). */
  readonly vnc?: boolean;
  /** Resume before the whole overlay has arrived. */
  readonly earlyStart?: boolean;
}

export const DEFAULT_SERVER_PORT = 8021;
export const MDNS_SERVICE_TYPE = 'cloudlet';
