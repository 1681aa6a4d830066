import { describe, expect, it } from 'vitest';
import { BEGIN, END, renderResults, replaceGenerated, share } from '../lib/report.js';
import type { BenchResults, CreationRun, SynthesisRun } from '../lib/results.js';
import { median, medianOf, ratio } from '../lib/stats.js';
import { selectWorkloads } from '../lib/workloads.js';

describe('median', () => {
  it('odd, even, empty, unsorted, non-finite skipped', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    expect(median([Number.NaN, 5])).toBe(5);
  });
  it('medianOf takes the median per key', () => {
    expect(
      medianOf([
        { a: 1, b: 10 },
        { a: 3, b: 30 },
        { a: 2, b: 20 },
      ]),
    ).toEqual({ a: 2, b: 20 });
  });
  it('ratio is NaN on a missing or zero denominator', () => {
    expect(ratio(1, 4)).toBe(0.25);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(undefined, 2)).toBeNaN();
  });
});

const creation = (bytes: number): CreationRun => ({
  bytes,
  diskBytes: bytes / 2,
  memoryBytes: bytes / 2,
  wallSeconds: 10,
  cpuSeconds: 5,
  guestScriptSeconds: 4,
  encodeSeconds: 2,
  memoryPhaseSeconds: 1,
  diskPhaseSeconds: 1,
  changedBytes: 400e6,
  changedMemoryPages: 50_000,
  changedDiskChunks: 47_656,
  throughputMBps: 200,
});
const synth: SynthesisRun = {
  toAnswerSeconds: 3,
  open: 0.1,
  check: 0.1,
  apply: 1,
  resume: 1,
  total: 2.2,
  overlayBytes: 1e6,
  networkBytes: 1e6,
  memoryPages: 100,
  diskClusters: 100,
  maxRssKiB: 102_400,
};
const results: BenchResults = {
  schema: 1,
  date: '2026-01-01T00:00:00.000Z',
  options: { runs: 3, quick: false },
  machine: {
    nproc: 2,
    cpu: 'Test CPU',
    ramBytes: 2 ** 33,
    kernel: '6.1.0',
    loadAverageStart: [1, 1, 1],
    loadAverageEnd: [2, 2, 2],
  },
  versions: { node: 'v20', qemu: '7.2' },
  durationSeconds: 600,
  workloads: [
    {
      name: 'w1',
      base: 'tiny',
      description: 'd',
      ours: { runs: [creation(1000)], median: creation(1000) },
      variants: { 'dedup off': { runs: [creation(3000)], median: creation(3000) } },
      baselines: {
        B1: { bytes: 10_000, diskBytes: 5000, memoryBytes: 5000, seconds: 1 },
        B2: { bytes: 5000, diskBytes: 2500, memoryBytes: 2500, seconds: 1 },
        B2unoptimized: { bytes: 8000, diskBytes: 3000, memoryBytes: 5000, seconds: 1 },
      },
      synthesisLocal: { runs: [synth], median: synth },
      decompressOnlySeconds: 2,
      links: [{ megabits: 38, synthesis: { runs: [synth], median: synth }, transferSeconds: 2.9 }],
      encoderKinds: {},
    },
  ],
  deltaIndex: { lookupMB: 92.3, boundMB: 128 },
};

describe('renderResults', () => {
  const md = renderResults(results);
  it('states machine, versions and the ratios against the goals', () => {
    expect(md).toContain('2 × Test CPU, 8.0 GiB RAM');
    expect(md).toContain('node v20, qemu 7.2');
    expect(md).toContain(
      '| w1 | tiny | 10,000 (0.01 / 0.01) | 5,000 (0.00 / 0.00) | 8,000 (0.00 / 0.01) | 1,000 (0.00 / 0.00) | 0.100 | **0.200** met | **0.125** met |',
    );
    expect(md).toContain('3,000 (3.00×)');
    expect(md).toContain('| **1.50** | **not met** |'); // 3 s to answer / 2 s decompress-only
    expect(md).toContain('| w1 | 38 Mbps | 1.00 | 3.00 | 1.00 | 2.90 | **1.03** | met |');
    expect(md).toContain('| **200.0** | met |');
    expect(md).toContain('| 92.3 | ≤ 128 | met |');
  });
  it('share is the off/on factor', () => {
    expect(share(300, 100)).toBe('3.00×');
    expect(share(undefined, 100)).toBe('—');
  });
});

describe('replaceGenerated', () => {
  it('replaces only the text between the markers and keeps the rest', () => {
    const doc = `# T\n\nkeep me\n\n${BEGIN}\nold\n${END}\n\n## after\n`;
    const out = replaceGenerated(doc, 'new table');
    expect(out).toBe(`# T\n\nkeep me\n\n${BEGIN}\n\nnew table\n\n${END}\n\n## after\n`);
    expect(replaceGenerated(out, 'again')).toContain('again');
    expect(replaceGenerated(out, 'again')).not.toContain('new table');
  });
  it('appends the markers when missing', () => {
    expect(replaceGenerated('# T\n', 'x')).toBe(`# T\n\n${BEGIN}\n\nx\n\n${END}\n`);
  });
});

describe('selectWorkloads', () => {
  it('all, --only, --quick (tiny base only), unknown name', () => {
    expect(selectWorkloads(undefined, false).map((w) => w.name)).toEqual([
      'server-app',
      'memory-heavy',
      'disk-heavy',
    ]);
    expect(selectWorkloads(['disk-heavy'], false).map((w) => w.name)).toEqual(['disk-heavy']);
    expect(selectWorkloads(undefined, true).map((w) => w.base)).toEqual(['tiny']);
    expect(() => selectWorkloads(['nope'], false)).toThrow(/unknown workload "nope"/);
  });
});
