import { describe, expect, it } from 'vitest';
import { inOrder } from '../src/in-order.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Work that finishes in a scrambled order and records how much ran at once. */
function tracked(fail?: number) {
  const stats = { running: 0, most: 0, started: [] as number[] };
  const start = async (i: number) => {
    stats.started.push(i);
    stats.running++;
    stats.most = Math.max(stats.most, stats.running);
    await sleep((i * 7) % 5);
    stats.running--;
    if (i === fail) throw new Error(`work ${i} failed`);
    return i;
  };
  return { stats, start };
}

describe('inOrder', () => {
  it('yields strictly in order with at most inFlight running', async () => {
    const { stats, start } = tracked();
    const out: number[] = [];
    for await (const i of inOrder(20, 3, start)) out.push(i);
    expect(out).toEqual([...Array(20).keys()]);
    expect(stats.most).toBe(3);
  });

  it('surfaces a failure when the consumer reaches it, after the ones before it', async () => {
    const { stats, start } = tracked(5);
    const out: number[] = [];
    await expect(
      (async () => {
        for await (const i of inOrder(20, 4, start)) out.push(i);
      })(),
    ).rejects.toThrow('work 5 failed');
    expect(out).toEqual([0, 1, 2, 3, 4]);
    expect(stats.running).toBe(0); // the ones started after 5 were awaited, not abandoned
    expect(Math.max(...stats.started)).toBeLessThan(9);
  });

  it('starts nothing more and leaves nothing running when the consumer breaks', async () => {
    const { stats, start } = tracked();
    for await (const i of inOrder(100, 4, start)) if (i === 2) break;
    expect(stats.running).toBe(0);
    expect(stats.started.length).toBeLessThanOrEqual(6);
  });

  it('starts nothing before the first next(), and refuses inFlight < 1', async () => {
    const { stats, start } = tracked();
    const iterator = inOrder(3, 2, start);
    expect(stats.started).toEqual([]);
    await iterator.return();
    await expect(inOrder(3, 0, start).next()).rejects.toThrow(RangeError);
  });
});
