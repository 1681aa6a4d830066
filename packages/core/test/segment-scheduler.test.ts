// The early-start scheduler with a fake overlay reader: file order in the background, `need` jumps the
// queue, each segment once, dependencies on earlier segments, failures surface.
import type { OverlayReader, OverlayRecord } from '@cloudlet/overlay-format';
import { describe, expect, it } from 'vitest';
import { createSegmentScheduler } from '../src/synthesis/segment-scheduler.js';

function fakeReader(count: number, delayMs: (i: number) => number, failing?: number) {
  const reads: number[] = [];
  const reader = {
    segments: Array.from({ length: count }, (_, i) => ({ entry: `segments/00000${i}` })),
    async readSegment(i: number): Promise<OverlayRecord[]> {
      reads.push(i);
      await new Promise((r) => setTimeout(r, delayMs(i)));
      if (i === failing) throw new Error(`segment ${i} ("segments/00000${i}"): fetch failed`);
      return [];
    },
  } as unknown as OverlayReader;
  return { reader, reads };
}

describe('segment scheduler', () => {
  it('applies every segment once, in file order when nobody asks', async () => {
    const { reader, reads } = fakeReader(6, () => 2);
    const applied: number[] = [];
    const s = createSegmentScheduler({
      overlay: reader,
      inFlight: 1,
      apply: async (i) => void applied.push(i),
    });
    await s.done;
    expect(applied).toEqual([0, 1, 2, 3, 4, 5]);
    expect(reads).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('fetches a needed segment ahead of the queue, and only once', async () => {
    const { reader, reads } = fakeReader(8, () => 10);
    const applied: number[] = [];
    const s = createSegmentScheduler({
      overlay: reader,
      inFlight: 1,
      apply: async (i) => void applied.push(i),
    });
    await Promise.all([s.need(6), s.need(6)]);
    expect(applied.indexOf(6)).toBeLessThan(3);
    await s.done;
    expect(reads.filter((i) => i === 6)).toHaveLength(1);
    expect([...applied].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('lets a segment wait for an earlier one it copies from', async () => {
    const { reader } = fakeReader(4, (i) => (i === 1 ? 30 : 1));
    const applied: number[] = [];
    const s = createSegmentScheduler({
      overlay: reader,
      inFlight: 4,
      apply: async (i) => {
        if (i === 3) await s.need(1);
        applied.push(i);
      },
    });
    await s.done;
    expect(applied.indexOf(1)).toBeLessThan(applied.indexOf(3));
  });

  it('a failed segment rejects done and every need that waits on it', async () => {
    const { reader } = fakeReader(5, () => 1, 2);
    const s = createSegmentScheduler({ overlay: reader, apply: async () => {} });
    await expect(s.need(2)).rejects.toThrow(/segment 2 .*fetch failed/);
    await expect(s.done).rejects.toThrow(/segment 2/);
  });

  it('stop() rejects done and starts no more fetches', async () => {
    const { reader, reads } = fakeReader(50, () => 5);
    const s = createSegmentScheduler({ overlay: reader, inFlight: 1, apply: async () => {} });
    await s.need(0);
    s.stop(new Error('synthesis stopped'));
    await expect(s.done).rejects.toThrow('synthesis stopped');
    await new Promise((r) => setTimeout(r, 30));
    expect(reads.length).toBeLessThan(5);
  });
});
