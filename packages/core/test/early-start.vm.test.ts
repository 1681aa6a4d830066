// Early start on the tiny VM behind a throttled HTTP server: the VM resumes once the memory segments are
// in, its web server answers before the last disk segment has been sent, the disk data arrives intact while
// it runs; a fetch failure mid-run stops the VM with a clear error, and no mount is left behind.
import { copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BaseInfo, type BaseRegistry, openBaseRegistry } from '@cloudlet/base-registry';
import { cloudletMountsUnder } from '@cloudlet/cloudletfs';
import { openOverlay } from '@cloudlet/overlay-format';
import { fetchStatePage, type ServedRequest, serveFile } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entrySpan } from '../../overlay-format/test/zip-tools.js';
import { profileOverlay, synthesize } from '../src/index.js';
import { createScriptedOverlay, createTinyBase } from './tiny-base.js';

// 6 MiB of random data on disk, out of the page cache (dropped; init_on_free=1 zeroes the freed pages), so
// the overlay's disk part is big and comes last, while the page httpd serves is small.
const CUSTOMIZE = [
  'dd if=/dev/urandom of=/mnt/big.bin bs=1M count=6 2>/dev/null',
  'sha256sum /mnt/big.bin > /mnt/big.sha',
  'echo early-page > /mnt/www/state.html',
  'sync; echo 3 > /proc/sys/vm/drop_caches',
  'httpd -p 80 -h /mnt/www',
].join('\n');

describe('synthesize({ earlyStart: true })', () => {
  let work: string;
  let registry: BaseRegistry;
  let base: BaseInfo;
  let overlayFile: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'core-early-'));
    registry = await openBaseRegistry({ home: join(work, 'home') });
    base = await createTinyBase(registry);
    overlayFile = join(work, 'big.zip');
    await createScriptedOverlay(registry, base, overlayFile, CUSTOMIZE);
  });
  const afterStop: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of afterStop) await stop();
    registry?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('answers through the forward while the last disk segment is withheld; then the disk arrives intact', async () => {
    const reader = await openOverlay(overlayFile);
    const disk = reader.segments.filter((s) => s.space === 'disk');
    const diskBytes = disk.reduce((n, s) => n + s.compressedBytes, 0);
    await reader.close();
    expect(diskBytes).toBeGreaterThan(5e6);
    // The server sends nothing of the last disk segment until the page has answered: a VM that needed it would
    // not answer at all (deterministic under any load, unlike a race against a slow link).
    const last = await entrySpan(overlayFile, disk.at(-1)?.entry ?? '');
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let withheld = true;
    const asked = new Set<ServedRequest>();
    const server = await serveFile(overlayFile, {
      bytesPerSecond: 1e6,
      // The segment's fetch starts at its header or data; the directory read at open only ends in it.
      hold: (request) => {
        if (request.start < last.start || request.start > last.dataStart) return undefined;
        asked.add(request);
        return withheld ? released : undefined;
      },
    });
    try {
      const synth = await synthesize({
        registry,
        overlay: server.url,
        earlyStart: true,
        portForwards: [{ guestPort: 80 }],
      });
      try {
        const page = await fetchStatePage(synth.vm.hostPort(80));
        const answeredAt = server.now();
        expect(page).toBe('early-page');
        // Nothing of the last segment has been sent: not asked for yet, or asked for and withheld.
        expect([...asked].every((r) => r.finishedAt === undefined)).toBe(true);
        console.log(
          `early start: resumed after ${synth.timings.total.toFixed(2)} s, page at ${(answeredAt / 1000).toFixed(2)} s; ` +
            `overlay ${(server.size / 1e6).toFixed(1)} MB at 1 MB/s, its last ${((last.end - last.start) / 1e6).toFixed(1)} MB withheld`,
        );
        withheld = false;
        release();
        await synth.arrived;
        expect(Math.max(...[...asked].map((r) => r.finishedAt ?? 0))).toBeGreaterThan(answeredAt);
        // Every byte of the 6 MiB file, read through cloudletfs after it all arrived, is what the guest wrote.
        const check = await synth.vm.console.run('cd /mnt && sha256sum -c big.sha', { timeoutMs: 60_000 });
        expect(check).toContain('big.bin: OK');
        expect((await readdir(join(synth.workDir, 'mnt'))).sort()).toEqual(['disk', 'memory']); // cloudletfs
        // The guest's main RAM, which QEMU maps from the mount (async reads only: this process serves it).
        const ram = synth.cloudletfs?.paths.memory ?? '';
        expect((await stat(ram)).size).toBe(base.spec.memoryMiB * 1024 * 1024);
      } finally {
        await synth.stop();
      }
      expect(await cloudletMountsUnder(work)).toEqual([]);
      expect(await readdir(join(registry.home, 'synthesis'))).toEqual([]);
    } finally {
      release(); // a failed check must not leave the withheld response hanging
      await server.close();
    }
  });

  it('a fetch failure after the VM resumed stops it and says which segment failed', async () => {
    // Once the VM runs, every response still sending (disk segments, at 1 MB/s) breaks off.
    let failing = false;
    const server = await serveFile(overlayFile, { bytesPerSecond: 1e6, failWhen: () => failing });
    try {
      const synth = await synthesize({
        registry,
        overlay: server.url,
        earlyStart: true,
        portForwards: [{ guestPort: 80 }],
      });
      failing = true;
      const stopped = synth.arrived.catch(() => {});
      afterStop.push(() => stopped.then(() => synth.stop()));
      await expect(synth.arrived).rejects.toThrow(/^segment \d+ \("segments\/\d+"\)/);
      const exit = await synth.vm.exited;
      expect(exit).toBeDefined();
      expect(await cloudletMountsUnder(work)).toEqual([]);
      expect(await readdir(join(registry.home, 'synthesis'))).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('profiling puts the chunks the app touched first; an early start from the profiled overlay answers', async () => {
    const profiled = join(work, 'profiled.zip');
    await copyFile(overlayFile, profiled);
    const result = await profileOverlay({
      registry,
      overlay: profiled,
      portForwards: [{ guestPort: 80 }],
      until: async (vm) => void (await fetchStatePage(vm.vm.hostPort(80))),
    });
    expect(result.touched.length).toBeGreaterThan(0);
    const reader = await openOverlay(profiled);
    const firstDisk = reader.segments.findIndex((s) => s.space === 'disk');
    expect(reader.segmentOf('disk', result.touched[0] as number)).toBe(firstDisk);
    expect(result.memoryTouched.length).toBeGreaterThan(0);
    expect(reader.segmentOf('memory', result.memoryTouched[0] as number)).toBe(0);
    await reader.close();
    // Same throttle as the first test: time from the start to the page, profiled vs not (same run).
    const times: Record<string, number> = {};
    for (const [name, file] of [
      ['plain', overlayFile],
      ['profiled', profiled],
    ] as const) {
      const server = await serveFile(file, { bytesPerSecond: 1e6 });
      try {
        const synth = await synthesize({
          registry,
          overlay: server.url,
          earlyStart: true,
          portForwards: [{ guestPort: 80 }],
        });
        try {
          expect(await fetchStatePage(synth.vm.hostPort(80))).toBe('early-page');
          times[name] = server.now() / 1000;
        } finally {
          await synth.stop();
        }
      } finally {
        await server.close();
      }
    }
    console.log(
      `profile: ${result.touched.length} of ${result.diskRecords} disk chunks and ${result.memoryTouched.length} of ` +
        `${result.memoryRecords} memory pages touched; page after ` +
        `${times.plain?.toFixed(2)} s (plain) vs ${times.profiled?.toFixed(2)} s (profiled) at 1 MB/s`,
    );
    expect(await cloudletMountsUnder(work)).toEqual([]);
  });
});
