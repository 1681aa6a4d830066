import type { QmpEvent } from './types.js';

/** Fan-out of QMP events to listeners and async iterators; `end()` when the connection closes. */
export interface EventHub {
  emit(event: QmpEvent): void;
  subscribe(listener: (event: QmpEvent) => void, onEnd?: () => void): () => void;
  iterate(): AsyncIterableIterator<QmpEvent>;
  end(): void;
}

interface Subscriber {
  readonly listener: (event: QmpEvent) => void;
  readonly onEnd: () => void;
}

export function createEventHub(): EventHub {
  const subscribers = new Set<Subscriber>();
  let ended = false;

  const subscribe = (listener: (event: QmpEvent) => void, onEnd: () => void = () => {}) => {
    if (ended) {
      onEnd();
      return () => {};
    }
    const subscriber = { listener, onEnd };
    subscribers.add(subscriber);
    return () => {
      subscribers.delete(subscriber);
    };
  };

  return {
    emit: (event) => {
      for (const subscriber of [...subscribers]) subscriber.listener(event);
    },
    subscribe,
    iterate: () => iterateEvents(subscribe),
    end: () => {
      if (ended) return;
      ended = true;
      for (const subscriber of [...subscribers]) subscriber.onEnd();
      subscribers.clear();
    },
  };
}

function iterateEvents(subscribe: EventHub['subscribe']): AsyncIterableIterator<QmpEvent> {
  const queue: QmpEvent[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  const unsubscribe = subscribe(
    (event) => {
      queue.push(event);
      wake?.();
    },
    () => {
      done = true;
      wake?.();
    },
  );
  const finish = (): IteratorResult<QmpEvent> => {
    done = true;
    unsubscribe();
    return { done: true, value: undefined };
  };
  const iterator: AsyncIterableIterator<QmpEvent> = {
    async next() {
      while (queue.length === 0 && !done) await new Promise<void>((resolve) => (wake = resolve));
      const event = queue.shift();
      return event === undefined ? finish() : { done: false, value: event };
    },
    async return() {
      return finish();
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
