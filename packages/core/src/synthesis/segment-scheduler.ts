import type { OverlayReader, OverlayRecord } from '@cloudlet/overlay-format';
import { SynthesisError } from './errors.js';

/**
 * Applies an overlay's segments in file order in the background, while anyone may ask for one segment to come
 * first (`need`): a VM waiting on a chunk jumps the queue, and no new background fetch starts until the
 * urgent ones are done (they get the link to themselves). Each segment is fetched and applied once.
 */
export interface SegmentScheduler {
  /** Resolves once segment `index` is applied (fetching it now if it was not started). */
  need(index: number): Promise<void>;
  /** Resolves when every segment is applied; rejects with the first failure. */
  readonly done: Promise<void>;
  /** Stops starting new fetches (those running finish); `done` rejects with `reason`. */
  stop(reason: Error): void;
}

export interface SchedulerOptions {
  readonly overlay: OverlayReader;
  /** Applies one segment's records; may itself call `need` for segments it depends on (earlier ones). */
  readonly apply: (index: number, records: OverlayRecord[]) => Promise<void>;
  /** Background fetches running at once (default 4). Priority fetches come on top. */
  readonly inFlight?: number;
  readonly onApplied?: (index: number) => void;
}

export function createSegmentScheduler(options: SchedulerOptions): SegmentScheduler {
  const { overlay } = options;
  const count = overlay.segments.length;
  const started = new Map<number, Promise<void>>();
  /** Priority fetches running: background fetching waits for them, so they get the whole link. */
  let urgent = 0;
  let urgentDone: (() => void) | undefined;
  let urgentIdle = Promise.resolve();
  let stopped: Error | undefined;
  let failed: ((error: Error) => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    failed = reject;
  });
  failure.catch(() => {});

  const run = (index: number): Promise<void> => {
    let job = started.get(index);
    if (job === undefined) {
      job = (async () => {
        if (stopped !== undefined) throw stopped;
        const records = await overlay.readSegment(index).catch((error: unknown) => {
          throw namedFailure(overlay, index, error);
        });
        await options.apply(index, records);
        options.onApplied?.(index);
      })();
      job.catch((error: Error) => failed?.(error));
      started.set(index, job);
    }
    return job;
  };

  const prioritized = (index: number): Promise<void> => {
    if (started.has(index)) return run(index);
    if (urgent++ === 0) urgentIdle = new Promise((resolve) => (urgentDone = resolve));
    return run(index).finally(() => {
      if (--urgent === 0) urgentDone?.();
    });
  };

  const background = async () => {
    let next = 0;
    const workers = Array.from({ length: Math.min(options.inFlight ?? 4, count) }, async () => {
      while (next < count) {
        await urgentIdle;
        const index = next++;
        await run(index);
      }
    });
    await Promise.all(workers);
  };

  const done = Promise.race([background(), failure]);
  done.catch(() => {});
  return {
    need(index) {
      if (!Number.isInteger(index) || index < 0 || index >= count)
        return Promise.reject(new RangeError(`segment ${index} of ${count}`));
      return prioritized(index);
    },
    done,
    stop(reason) {
      stopped ??= reason;
      failed?.(reason);
    },
  };
}

/** Which segment could not be had, and why (the reader's message may not say which). */
function namedFailure(overlay: OverlayReader, index: number, error: unknown): Error {
  const entry = overlay.segments[index]?.entry ?? '?';
  const why = error instanceof Error ? error.message : String(error);
  const what = why.startsWith(`segment ${index} `) ? why : `segment ${index} ("${entry}"): ${why}`;
  return new SynthesisError('segment-failed', what, { cause: error });
}
