import type { OverlayReader, OverlayRecord } from '@cloudlet/overlay-format';

/**
 * Applies an overlay's segments in file order in the background, while anyone may ask for one segment to come
 * first (`need`): a VM waiting on a chunk jumps the queue. Each segment is fetched and applied once.
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
        const records = await overlay.readSegment(index);
        await options.apply(index, records);
        options.onApplied?.(index);
      })();
      job.catch((error: Error) => failed?.(error));
      started.set(index, job);
    }
    return job;
  };

  const background = async () => {
    let next = 0;
    const workers = Array.from({ length: Math.min(options.inFlight ?? 4, count) }, async () => {
      while (next < count) {
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
      return run(index);
    },
    done,
    stop(reason) {
      stopped ??= reason;
      failed?.(reason);
    },
  };
}
