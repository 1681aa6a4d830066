// The file servers tests and the bench fetch overlays from: token bucket, Range parsing, throttled serving.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mbps, parseRange, serveDirectory, serveFile, TokenBucket } from '../src/index.js';

describe('TokenBucket', () => {
  it('lets a burst through, then paces at the rate', () => {
    const b = new TokenBucket(1000, 500, 0);
    expect(b.reserve(500, 0)).toBe(0);
    expect(b.reserve(1000, 0)).toBeCloseTo(1000); // 1000 bytes owed at 1000 B/s
    expect(b.reserve(0, 1000)).toBe(0); // paid back after a second
  });
  it('refills up to the burst only', () => {
    const b = new TokenBucket(1000, 500, 0);
    b.reserve(500, 0);
    expect(b.reserve(500, 10_000)).toBe(0);
    expect(b.reserve(100, 10_000)).toBeCloseTo(100);
  });
  it('a clock going backwards does not mint tokens', () => {
    const b = new TokenBucket(1000, 100, 1000);
    b.reserve(100, 1000);
    expect(b.reserve(100, 500)).toBeCloseTo(100);
  });
  it('mbps converts megabits to bytes', () => {
    expect(mbps(38)).toBe(4_750_000);
  });
});

describe('parseRange', () => {
  it('closed, open-ended, suffix, clamped, unsatisfiable, none', () => {
    expect(parseRange('bytes=0-0', 10)).toEqual({ start: 0, end: 1 });
    expect(parseRange('bytes=4-', 10)).toEqual({ start: 4, end: 10 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 10 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 10 });
    expect(parseRange('bytes=20-30', 10)).toBe('unsatisfiable');
    expect(parseRange(undefined, 10)).toBeUndefined();
    expect(parseRange('items=1-2', 10)).toBeUndefined();
  });
});

describe('serveFile / serveDirectory', () => {
  it('serve ranges (416 past the end), whole files, 404 for others, and pace at the rate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'file-server-'));
    await writeFile(join(dir, 'f.bin'), Buffer.alloc(300_000, 7));
    const server = await serveDirectory(dir);
    try {
      const part = await fetch(`${server.url}/f.bin`, { headers: { range: 'bytes=10-19' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe('bytes 10-19/300000');
      expect((await part.arrayBuffer()).byteLength).toBe(10);
      expect((await fetch(`${server.url}/f.bin`, { headers: { range: 'bytes=400000-' } })).status).toBe(416);
      expect((await fetch(`${server.url}/nope.bin`)).status).toBe(404);
      server.setRate(1_000_000); // 300 KB at 1 MB/s, 64 KiB burst: ≥ ~0.23 s
      const t = performance.now();
      const whole = await fetch(`${server.url}/f.bin`);
      expect((await whole.arrayBuffer()).byteLength).toBe(300_000);
      const s = (performance.now() - t) / 1000;
      expect(s).toBeGreaterThan(0.2);
      expect(s).toBeLessThan(2);
      expect(server.requests.map((r) => [r.name, r.start, r.end])).toEqual([
        ['f.bin', 10, 20],
        ['f.bin', 0, 300_000],
      ]);
    } finally {
      await server.close();
    }
    const one = await serveFile(join(dir, 'f.bin'), { range: false });
    try {
      expect(one.url).toMatch(/\/f\.bin$/);
      expect(one.size).toBe(300_000);
      const whole = await fetch(one.url, { headers: { range: 'bytes=0-0' } });
      expect(whole.status).toBe(200); // no Range support: the whole file
      expect((await whole.arrayBuffer()).byteLength).toBe(300_000);
    } finally {
      await one.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
