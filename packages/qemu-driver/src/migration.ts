import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Clock, withTimeout } from './clock.js';
import type { UnixListener } from './deps.js';
import { MigrationFailedError } from './errors.js';
import type { QmpClient } from './qmp/client.js';
import type { MigrationInfo } from './qmp/types.js';

/** QEMU's default is 128 MiB/s, which throttles even zero pages; 16 GiB/s means "as fast as you can". */
export const SNAPSHOT_MAX_BANDWIDTH = 17_179_869_184;

const ACCEPT_TIMEOUT_MS = 10_000;
const FINAL_STATES = new Set(['completed', 'failed', 'cancelled']);

/** A memory snapshot in flight. */
export interface MemorySnapshot {
  /** The migration stream bytes. Read it to the end: QEMU waits while nobody reads. */
  readonly stream: Readable;
  /**
   * Resolves (with query-migrate's final info) once QEMU reports `completed` and the stream has been read
   * to its end; rejects with MigrationFailedError or QemuExitedError.
   */
  readonly completed: Promise<MigrationInfo>;
}

/** The final MIGRATION status, watched from before the migration starts so no event is missed. */
function watchMigration(qmp: QmpClient): { outcome: Promise<string>; cancel: () => void } {
  let cancel = () => {};
  const outcome = new Promise<string>((resolve, reject) => {
    const stop = qmp.onEvent((event) => {
      const status = event.data.status;
      if (event.event === 'MIGRATION' && typeof status === 'string' && FINAL_STATES.has(status)) {
        stop();
        resolve(status);
      }
    });
    qmp.closed.then(() => reject(new Error('QMP connection closed during migration')));
    cancel = stop;
  });
  outcome.catch(() => {}); // observed by the caller when it matters
  return { outcome, cancel };
}

async function expectCompleted(qmp: QmpClient, status: string): Promise<MigrationInfo> {
  const info = await qmp.queryMigrate();
  if (status !== 'completed') throw new MigrationFailedError(status, info['error-desc']);
  return info;
}

function streamClosed(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    stream.once('close', () => resolve());
  });
}

async function prepareMigration(qmp: QmpClient, ignoreShared = false): Promise<void> {
  await qmp.migrateSetParameters({ 'max-bandwidth': SNAPSHOT_MAX_BANDWIDTH });
  await qmp.migrateSetCapabilities([
    { capability: 'events', state: true },
    // Must equal the stream's: QEMU refuses a stream whose x-ignore-shared differs from its own setting.
    ...(ignoreShared ? [{ capability: 'x-ignore-shared', state: true }] : []),
  ]);
}

/**
 * Stops the guest and migrates its state into a unix socket that Node listens on (QEMU 7.2 has no
 * `file:` URI, and `exec:` would need a shell). Afterwards QEMU sits in `postmigrate` until `cont`.
 */
export async function startSnapshot(
  qmp: QmpClient,
  listen: () => Promise<UnixListener>,
  socketPath: string,
  clock: Clock,
): Promise<MemorySnapshot> {
  await qmp.stop();
  await prepareMigration(qmp);
  const listener = await listen();
  const watch = watchMigration(qmp);
  try {
    const accepted = listener.accept();
    await qmp.migrate(`unix:${socketPath}`);
    const stream = await withTimeout(
      clock,
      accepted,
      ACCEPT_TIMEOUT_MS,
      () => new Error('QEMU did not connect'),
    );
    const completed = watch.outcome.then(async (status) => {
      const info = await expectCompleted(qmp, status);
      await streamClosed(stream);
      return info;
    });
    completed.catch(() => stream.destroy());
    return { stream, completed };
  } catch (error) {
    watch.cancel();
    throw error;
  } finally {
    await listener.close(); // unlinks the socket file; the accepted connection stays open
  }
}

/** Feeds a migration stream to a QEMU started with `-incoming defer` and waits until it is loaded. */
export async function loadIncoming(
  qmp: QmpClient,
  connect: () => Promise<Duplex>,
  socketPath: string,
  source: Readable | AsyncIterable<Uint8Array>,
  options: { ignoreShared?: boolean } = {},
): Promise<MigrationInfo> {
  await prepareMigration(qmp, options.ignoreShared ?? false);
  const watch = watchMigration(qmp);
  try {
    // QEMU listens on the socket by the time migrate-incoming answers.
    await qmp.migrateIncoming(`unix:${socketPath}`);
    const socket = await connect();
    // pipeline() respects backpressure, ends the socket after the last byte, and destroys both on error.
    const piped = pipeline(source, socket);
    piped.catch(() => {});
    // QEMU reports completion only after reading the whole stream, so either outcome may come first.
    const status = await Promise.race([watch.outcome, piped.then(() => watch.outcome)]);
    const info = await expectCompleted(qmp, status);
    await piped.catch(() => {}); // once loaded, a late socket error (QEMU hanging up) no longer matters
    return info;
  } finally {
    watch.cancel();
  }
}
