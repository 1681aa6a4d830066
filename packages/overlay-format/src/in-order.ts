/**
 * `start(0)`, `start(1)`, … `start(count - 1)` with up to `inFlight` running at once, results yielded
 * strictly in index order. A rejection surfaces when the consumer reaches its index (later ones are
 * observed, never unhandled). When the consumer stops early, or an error ends the loop, nothing new
 * starts and the ones already running are awaited, so no work outlives the iteration.
 */
export async function* inOrder<T>(
  count: number,
  inFlight: number,
  start: (index: number) => Promise<T>,
): AsyncGenerator<T, void, undefined> {
  if (!Number.isInteger(inFlight) || inFlight < 1) throw new RangeError(`inFlight ${inFlight} (min 1)`);
  const running: Promise<T>[] = [];
  let next = 0;
  try {
    for (let i = 0; i < count; i++) {
      while (next < count && running.length < inFlight) {
        const work = start(next++);
        work.catch(() => {});
        running.push(work);
      }
      yield await (running.shift() as Promise<T>);
    }
  } finally {
    await Promise.allSettled(running);
  }
}
