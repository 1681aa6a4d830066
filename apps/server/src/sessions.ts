// Session bookkeeping: one synthesis per session, its progress history for the streams, limits, the registry
// row, and closing (the VM is detached once it runs, so a crashed server leaves a QEMU its successor can find).
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BaseRegistry, SessionStore } from '@cloudlet/base-registry';
import type {
  DetachedSynthesis,
  RemoteEndpoints,
  RemoteError,
  RemoteSession,
  RemoteSessionState,
  RemoteStage,
  RemoteTimings,
  SessionEvent,
  SynthesisProgress,
  SynthesizedVm,
  SynthesizeOptions,
} from '@cloudlet/core';
import type { OverlayReader } from '@cloudlet/overlay-format';
import { detachedVmRunning, type PortForwardInput } from '@cloudlet/qemu-driver';
import { HttpError, toRemoteError } from './errors.js';
import type { OpenUpload } from './upload.js';

export interface Limits {
  /** Largest overlay accepted (upload body, or the segments of a URL's overlay). */
  readonly maxOverlayBytes: number;
  /** Sessions creating or running at once; one more is answered 429. */
  readonly maxSessions: number;
  readonly uploadIdleTimeoutMs: number;
  /** Retry-After of a 429, seconds. */
  readonly retryAfterSeconds: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxOverlayBytes: 4 * 1024 ** 3,
  maxSessions: 4,
  uploadIdleTimeoutMs: 30_000,
  retryAfterSeconds: 30,
};

export interface OpenedUrl {
  readonly reader: OverlayReader;
  /** Closes the source under the reader (the reader itself is synthesize()'s to close). */
  close(): Promise<void>;
}

export interface SessionDeps {
  readonly registry: BaseRegistry;
  readonly store: SessionStore;
  readonly synthesize: (options: SynthesizeOptions) => Promise<SynthesizedVm>;
  readonly stopDetachedSynthesis: (workDir: string) => Promise<unknown>;
  readonly openUpload: OpenUpload;
  readonly openUrl: (url: string, spoolDir: string, onBytes: (bytes: number) => void) => Promise<OpenedUrl>;
  readonly limits: Limits;
  /** Where QEMU listens for the forwarded ports (the server's own address, unless loopback). */
  readonly forwardAddress: string;
  readonly log: (message: string) => void;
  /** Whether a detached QEMU still runs (default: qemu-driver's detachedVmRunning). */
  readonly isVmRunning?: (pid: number, runDir: string) => boolean;
  /** Keep every session's VM held by this process instead of detached (the libvirt backend cannot detach). */
  readonly holdVms?: boolean;
  /** How often ready sessions are checked for a VM that went away on its own (default 2000 ms). */
  readonly watchEveryMs?: number;
}

export interface SessionRequest {
  readonly base?: string;
  readonly ports?: readonly { guestPort: number; proto: 'tcp' | 'udp' }[];
  readonly vnc?: boolean;
  /** The VM resumes before the overlay has arrived; this server serves RAM and disk (cloudletfs): not detached. */
  readonly earlyStart?: boolean;
  /** With earlyStart: 'first' applies the memory before resuming (default: on demand). */
  readonly earlyStartMemory?: 'on-demand' | 'first';
}

type Listener = (event: SessionEvent) => void;

interface Session {
  readonly id: string;
  readonly source: 'upload' | 'url';
  readonly url?: string;
  readonly createdAt: string;
  readonly started: number;
  readonly dir: string;
  readonly controller: AbortController;
  readonly history: SessionEvent[];
  readonly listeners: Set<Listener>;
  state: RemoteSessionState;
  stage?: RemoteStage;
  baseId?: string;
  bytesReceived: number;
  overlayBytes?: number;
  endpoints?: RemoteEndpoints;
  timings?: RemoteTimings;
  error?: RemoteError;
  detached?: DetachedSynthesis;
  /** A VM held by this process (early start serves its disk from here; libvirt cannot detach). */
  vm?: SynthesizedVm;
  /** Settles when the synthesis has succeeded or everything of a failed one is gone. */
  running?: Promise<void>;
  closing?: Promise<RemoteSession>;
  watch?: NodeJS.Timeout;
}

const ENDED_KEPT = 100;
const PROGRESS_EVERY_MS = 200;

const isFinal = (e: SessionEvent) => e.type !== 'progress';

export function createSessionManager(deps: SessionDeps) {
  const sessions = new Map<string, Session>();
  const sessionsDir = join(deps.registry.home, 'sessions');

  /** Early start serves the disk from here, and libvirt cannot detach: those VMs stay with this process. */
  const held = (request: SessionRequest) => request.earlyStart === true || deps.holdVms === true;
  const active = () => [...sessions.values()].filter((s) => s.state === 'creating' || s.state === 'ready');
  const elapsed = (s: Session) => (performance.now() - s.started) / 1000;

  function view(s: Session): RemoteSession {
    return {
      id: s.id,
      state: s.state,
      createdAt: s.createdAt,
      source: s.source,
      ...(s.url === undefined ? {} : { url: s.url }),
      ...(s.baseId === undefined ? {} : { baseId: s.baseId }),
      ...(s.stage === undefined ? {} : { stage: s.stage }),
      bytesReceived: s.bytesReceived,
      ...(s.overlayBytes === undefined ? {} : { overlayBytes: s.overlayBytes }),
      ...(s.endpoints === undefined ? {} : { endpoints: s.endpoints }),
      ...(s.timings === undefined ? {} : { timings: s.timings }),
      ...(s.error === undefined ? {} : { error: s.error }),
    };
  }

  function emit(s: Session, event: SessionEvent): void {
    // The history keeps the last progress of each stage run and every final event: replays stay short.
    const last = s.history.at(-1);
    if (event.type === 'progress' && last?.type === 'progress' && last.stage === event.stage) s.history.pop();
    s.history.push(event);
    for (const listener of s.listeners) listener(event);
    if (isFinal(event)) s.listeners.clear();
  }

  /** Progress of one stage with its MB/s; byte counts are sent at most every 200 ms (and at the end). */
  function progressReporter(s: Session) {
    let stage: RemoteStage | undefined;
    let stageStart = 0;
    let lastSent = 0;
    return (p: Omit<SynthesisProgress, 'stage' | 'base'> & { stage: RemoteStage }) => {
      const now = performance.now();
      if (p.stage !== stage) {
        stage = p.stage;
        stageStart = now;
        lastSent = 0;
      } else if (
        now - lastSent < PROGRESS_EVERY_MS &&
        !(p.totalBytes !== undefined && p.bytesDone !== undefined && p.bytesDone >= p.totalBytes)
      )
        return;
      lastSent = now;
      s.stage = p.stage;
      const seconds = (now - stageStart) / 1000;
      emit(s, {
        type: 'progress',
        stage: p.stage,
        elapsed: elapsed(s),
        ...(p.bytesDone === undefined ? {} : { bytesDone: p.bytesDone }),
        ...(p.totalBytes === undefined ? {} : { totalBytes: p.totalBytes }),
        ...(p.bytesDone === undefined || seconds < 0.001
          ? {}
          : { mbPerSecond: Math.round((p.bytesDone / 1e6 / seconds) * 100) / 100 }),
        ...(p.segmentsDone === undefined ? {} : { segmentsDone: p.segmentsDone }),
        ...(p.segments === undefined ? {} : { segments: p.segments }),
      });
    };
  }

  function forget(): void {
    const ended = [...sessions.values()].filter((s) => s.state === 'closed' || s.state === 'failed');
    for (const s of ended.slice(0, Math.max(0, ended.length - ENDED_KEPT))) sessions.delete(s.id);
  }

  function admit(source: 'upload' | 'url', url?: string): Session {
    if (active().length >= deps.limits.maxSessions)
      throw new HttpError(
        429,
        'too-many-sessions',
        `this cloudlet runs ${deps.limits.maxSessions} sessions at most; close one or retry later`,
        { 'retry-after': String(deps.limits.retryAfterSeconds), connection: 'close' },
      );
    const id = randomBytes(6).toString('hex');
    const s: Session = {
      id,
      source,
      ...(url === undefined ? {} : { url }),
      createdAt: new Date().toISOString(),
      started: performance.now(),
      dir: join(sessionsDir, id),
      controller: new AbortController(),
      history: [],
      listeners: new Set(),
      state: 'creating',
      bytesReceived: 0,
    };
    sessions.set(id, s);
    deps.store.insert({
      id,
      state: 'creating',
      createdAt: s.createdAt,
      ownerPid: process.pid,
      source: url ?? 'upload',
      dir: s.dir,
    });
    forget();
    return s;
  }

  function forwardsFor(request: SessionRequest, reader: OverlayReader): PortForwardInput[] {
    const own = reader.manifest.vm.spec.nics[0]?.portForwards ?? [];
    const wanted = request.ports ?? own.map((f) => ({ guestPort: f.guestPort, proto: f.proto }));
    return wanted.map((f) => ({
      proto: f.proto,
      guestPort: f.guestPort,
      hostPort: 0,
      hostAddress: deps.forwardAddress,
    }));
  }

  /** Synthesis of an opened overlay; on any failure (or abort) nothing of the session is left. */
  async function synthesizeInto(
    s: Session,
    request: SessionRequest,
    reader: () => Promise<OverlayReader>,
    uploadSeconds: () => number | undefined,
  ): Promise<void> {
    const progress = progressReporter(s);
    const { signal } = s.controller;
    const opened = await reader();
    let vm: SynthesizedVm | undefined;
    try {
      s.overlayBytes = opened.segments.reduce((n, seg) => n + seg.compressedBytes, 0);
      if (s.overlayBytes > deps.limits.maxOverlayBytes)
        throw new HttpError(
          413,
          'too-large',
          `the overlay's segments hold ${s.overlayBytes} bytes, over this server's limit of ${deps.limits.maxOverlayBytes}`,
        );
      s.baseId = opened.manifest.base.id;
      signal.throwIfAborted();
    } catch (error) {
      await opened.close().catch(() => {});
      throw error;
    }
    vm = await deps.synthesize({
      registry: deps.registry,
      overlay: opened,
      workDir: join(s.dir, 'vm'),
      portForwards: forwardsFor(request, opened),
      ...(request.earlyStart === true ? { earlyStart: true } : {}),
      ...(request.earlyStartMemory === undefined ? {} : { earlyStartMemory: request.earlyStartMemory }),
      ...(held(request) ? {} : { detachable: true }),
      signal,
      ...(request.base === undefined ? {} : { base: request.base }),
      ...(request.vnc === true ? { vnc: true } : {}),
      onProgress: (p) => {
        if (p.stage !== 'ready') progress({ ...p, stage: p.stage });
      },
    });
    if (signal.aborted) {
      await vm.stop().catch(() => {});
      signal.throwIfAborted();
    }
    if (held(request)) s.vm = vm;
    else s.detached = await vm.detach();
    const e = vm.endpoints;
    s.endpoints = {
      portForwards: e.portForwards.map((f) => ({
        proto: f.proto,
        hostAddress: f.hostAddress,
        hostPort: f.hostPort,
        guestPort: f.guestPort,
      })),
      serialSocket: e.serialSocket,
      qmpSocket: e.qmpSocket,
      ...(e.vncSocket === undefined ? {} : { vncSocket: e.vncSocket }),
    };
    const upload = uploadSeconds();
    s.timings = {
      total: elapsed(s),
      ...(upload === undefined ? {} : { upload }),
      open: vm.timings.open,
      check: vm.timings.check,
      apply: vm.timings.apply,
      resume: vm.timings.resume,
    };
    s.baseId = vm.base.id;
  }

  async function fail(s: Session, error: unknown): Promise<void> {
    await rm(s.dir, { recursive: true, force: true }).catch(() => {});
    if (s.state !== 'creating') return;
    s.state = 'failed';
    s.error = toRemoteError(error);
    deps.store.update(s.id, { state: 'failed', error: s.error.message });
    deps.log(`session ${s.id} failed: ${s.error.message}`);
    emit(s, { type: 'failed', elapsed: elapsed(s), error: s.error });
  }

  function ready(s: Session): void {
    s.state = 'ready';
    s.stage = 'ready';
    deps.store.update(s.id, {
      state: 'ready',
      ...(s.baseId === undefined ? {} : { baseId: s.baseId }),
      ...(s.detached === undefined ? {} : { qemuPid: s.detached.pid, runDir: s.detached.runDir }),
      details: JSON.stringify({ endpoints: s.endpoints, timings: s.timings, workDir: s.detached?.workDir }),
    });
    deps.log(`session ${s.id} ready in ${s.timings?.total.toFixed(2)} s`);
    emit(s, { type: 'ready', elapsed: elapsed(s), session: view(s) });
    watchVm(s);
  }

  /** A VM that stops on its own (guest poweroff, QEMU killed) ends its session and frees its place. */
  function watchVm(s: Session): void {
    if (s.vm !== undefined) {
      watchHeldVm(s, s.vm);
      return;
    }
    const detached = s.detached;
    if (detached === undefined) return;
    const running = deps.isVmRunning ?? ((pid: number, runDir: string) => detachedVmRunning({ pid, runDir }));
    s.watch = setInterval(() => {
      if (s.state !== 'ready' || s.closing !== undefined) return clearInterval(s.watch);
      if (running(detached.pid, detached.runDir)) return;
      clearInterval(s.watch);
      void endExitedSession(s, detached);
    }, deps.watchEveryMs ?? 2000);
    s.watch.unref();
  }

  /** Its files go first: whoever sees the session `failed` finds nothing of it left. */
  async function endExitedSession(s: Session, detached: { pid: number; runDir: string }): Promise<void> {
    await rm(s.dir, { recursive: true, force: true }).catch(() => {});
    if (basename(detached.runDir).startsWith('cloudlet-vm-'))
      await rm(detached.runDir, { recursive: true, force: true }).catch(() => {});
    if (s.state !== 'ready' || s.closing !== undefined) return; // closed meanwhile: close() reports it
    s.state = 'failed';
    s.error = {
      error: 'vm-exited',
      message: `the session's VM exited on its own (QEMU pid ${detached.pid})`,
      status: 410,
    };
    deps.store.update(s.id, { state: 'failed', error: s.error.message });
    deps.log(`session ${s.id}: ${s.error.message}`);
    emit(s, { type: 'failed', elapsed: elapsed(s), error: s.error });
  }

  /** An early-start VM: its overlay failing to arrive, or QEMU exiting, ends the session. */
  function watchHeldVm(s: Session, vm: SynthesizedVm): void {
    const end = (error: RemoteError) => {
      if (s.state !== 'ready' || s.closing !== undefined) return;
      s.state = 'failed';
      s.error = error;
      deps.store.update(s.id, { state: 'failed', error: error.message });
      deps.log(`session ${s.id}: ${error.message}`);
      void vm
        .stop()
        .then(() => rm(s.dir, { recursive: true, force: true }))
        .catch(() => {});
      emit(s, { type: 'failed', elapsed: elapsed(s), error });
    };
    vm.arrived.catch((error: unknown) => end(toRemoteError(error)));
    void vm.vm.exited.then(() =>
      end({ error: 'vm-exited', message: `the session's VM exited (QEMU pid ${vm.vm.pid})`, status: 410 }),
    );
  }

  function start(s: Session, work: () => Promise<void>): void {
    s.running = (async () => {
      try {
        await mkdir(s.dir, { recursive: true });
        await work();
        ready(s);
      } catch (error) {
        await fail(s, error);
      }
    })();
  }

  return {
    /** A session fed by a request body; the body is read from here on. */
    fromUpload(body: Readable, request: SessionRequest): RemoteSession {
      const s = admit('upload');
      const progress = progressReporter(s);
      let uploadSeconds: number | undefined;
      start(s, async () => {
        const upload = deps.openUpload(body, {
          spoolDir: s.dir,
          maxBytes: deps.limits.maxOverlayBytes,
          idleTimeoutMs: deps.limits.uploadIdleTimeoutMs,
          onBytes: (bytes) => {
            s.bytesReceived = bytes;
            progress({ stage: 'upload', bytesDone: bytes });
          },
        });
        const onAbort = () => upload.abort(s.controller.signal.reason);
        s.controller.signal.addEventListener('abort', onAbort, { once: true });
        // An upload that breaks off ends the synthesis it feeds.
        void upload.done.then(
          (bytes) => {
            uploadSeconds = elapsed(s);
            progress({ stage: 'upload', bytesDone: bytes, totalBytes: bytes });
          },
          (error: unknown) => s.controller.abort(error),
        );
        try {
          await synthesizeInto(
            s,
            request,
            () => upload.reader,
            () => uploadSeconds,
          );
          // Early start runs before the body has all arrived: a broken upload then fails `arrived`.
          if (request.earlyStart !== true) await upload.done;
        } catch (error) {
          upload.abort(error);
          throw error;
        } finally {
          s.controller.signal.removeEventListener('abort', onAbort);
        }
      });
      return view(s);
    },

    /** A session whose overlay the server fetches. */
    fromUrl(url: string, request: SessionRequest): RemoteSession {
      const s = admit('url', url);
      const progress = progressReporter(s);
      start(s, async () => {
        progress({ stage: 'download' });
        const opened = await deps.openUrl(url, s.dir, (bytes) => {
          s.bytesReceived = bytes;
        });
        let keepOpen = false;
        try {
          await synthesizeInto(
            s,
            request,
            async () => opened.reader,
            () => undefined,
          );
          // Early start still reads segments from the source while the VM runs.
          if (s.vm !== undefined) {
            keepOpen = true;
            void s.vm.arrived.catch(() => {}).finally(() => opened.close().catch(() => {}));
          }
        } finally {
          if (!keepOpen) await opened.close().catch(() => {});
        }
      });
      return view(s);
    },

    get(id: string): RemoteSession {
      const s = sessions.get(id);
      if (s === undefined) throw new HttpError(404, 'unknown-session', `no session ${id} on this cloudlet`);
      return view(s);
    },

    list(): RemoteSession[] {
      return [...sessions.values()].map(view);
    },

    activeCount: () => active().length,

    /**
     * Replays the session's events so far, then passes each new one up to the last (ready, failed or
     * closed). Returns the unsubscribe function, or undefined when the stream already ended in the replay.
     */
    subscribe(id: string, listener: Listener): (() => void) | undefined {
      const s = sessions.get(id);
      if (s === undefined) throw new HttpError(404, 'unknown-session', `no session ${id} on this cloudlet`);
      for (const event of s.history) listener(event);
      if (s.history.some(isFinal)) return undefined;
      s.listeners.add(listener);
      return () => s.listeners.delete(listener);
    },

    /** Stops the VM (or the synthesis under way) and removes every file of the session. Idempotent. */
    close(id: string): Promise<RemoteSession> {
      const s = sessions.get(id);
      if (s === undefined)
        return Promise.reject(new HttpError(404, 'unknown-session', `no session ${id} on this cloudlet`));
      s.closing ??= (async () => {
        clearInterval(s.watch);
        if (s.state === 'creating') {
          s.controller.abort(new HttpError(410, 'closed', `session ${id} was closed`));
          await s.running;
        }
        if (s.state === 'ready' && s.vm !== undefined) await s.vm.stop().catch(() => {});
        if (s.state === 'ready' && s.detached !== undefined) {
          await deps.stopDetachedSynthesis(s.detached.workDir).catch((error: unknown) => {
            deps.log(`session ${id}: stopping its VM: ${(error as Error).message}`);
          });
        }
        await rm(s.dir, { recursive: true, force: true });
        if (s.state === 'ready' || s.state === 'creating') {
          s.state = 'closed';
          deps.store.update(id, { state: 'closed' });
          deps.log(`session ${id} closed`);
          emit(s, { type: 'closed', elapsed: elapsed(s) });
        }
        return view(s);
      })();
      return s.closing;
    },

    /** Every session closed (graceful shutdown). */
    async closeAll(): Promise<void> {
      await Promise.all(active().map((s) => this.close(s.id).catch(() => {})));
    },
  };
}

export type SessionManager = ReturnType<typeof createSessionManager>;
