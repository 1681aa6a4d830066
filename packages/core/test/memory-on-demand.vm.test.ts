// Early start with the guest's RAM on cloudletfs (memory on demand): behind a throttled server the VM resumes
// before its memory segments have arrived, the app answers with all its state, and RAM the guest reads later
// (a 16 MiB random tmpfs file) arrives intact. With memory first, the same overlay resumes only after them.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BaseInfo, type BaseRegistry, openBaseRegistry } from '@cloudlet/base-registry';
import { cloudletMountsUnder } from '@cloudlet/cloudletfs';
import { openOverlay } from '@cloudlet/overlay-format';
import { APP_SCRIPT, readAppState, sampleAppState, serveFile, until } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SynthesizeOptions, synthesize } from '../src/index.js';
import { createScriptedOverlay, createTinyBase } from './tiny-base.js';

const CUSTOMIZE = [
  'dd if=/dev/urandom of=/tmp/blob bs=1M count=16 2>/dev/null',
  'sha256sum /tmp/blob > /tmp/blob.sha',
  APP_SCRIPT,
].join('\n');

describe('synthesize({ earlyStart: true }) with the RAM on cloudletfs', () => {
  let work: string;
  let registry: BaseRegistry;
  let base: BaseInfo;
  let overlayFile: string;
  let memorySegments: number;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'core-ram-'));
    registry = await openBaseRegistry({ home: join(work, 'home') });
    base = await createTinyBase(registry);
    overlayFile = join(work, 'ram.zip');
    await createScriptedOverlay(registry, base, overlayFile, CUSTOMIZE);
    const reader = await openOverlay(overlayFile);
    memorySegments = reader.segments.filter((s) => s.space === 'memory').length;
    await reader.close();
  });
  afterAll(async () => {
    registry?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** Synthesis from a 2 MB/s server; how many segments were applied when the VM was running. */
  async function synthesizeThrottled(memory: SynthesizeOptions['earlyStartMemory']) {
    const server = await serveFile(overlayFile, { bytesPerSecond: 2e6 });
    let appliedAtResume = -1;
    let applied = 0;
    const synth = await synthesize({
      registry,
      overlay: server.url,
      earlyStart: true,
      ...(memory === undefined ? {} : { earlyStartMemory: memory }),
      portForwards: [{ guestPort: 80 }],
      onProgress: (p) => {
        if (p.stage === 'apply' && p.segmentsDone !== undefined) applied = p.segmentsDone;
        if (p.stage === 'ready') appliedAtResume = applied;
      },
    }).catch(async (error: unknown) => {
      await server.close();
      throw error;
    });
    return { server, synth, appliedAtResume, resumedAt: server.now() / 1000 };
  }

  it('resumes before the memory has arrived; state answers; RAM read later is intact', async () => {
    expect(memorySegments).toBeGreaterThan(4);
    const { server, synth, appliedAtResume, resumedAt } = await synthesizeThrottled(undefined);
    try {
      expect(appliedAtResume).toBeLessThan(memorySegments);
      const port = synth.vm.hostPort(80);
      // Unprofiled, the pages the app needs are spread over every memory segment: it answers once most arrived.
      await until(
        () =>
          readAppState(port).then(
            () => true,
            () => false,
          ),
        'the app to answer',
      );
      const answeredAt = server.now() / 1000;
      const [first, second] = await sampleAppState(port, 1000);
      expect(first).toMatchObject({ disk: 'app-disk-file', tmpfs: 'app-tmpfs-file' });
      expect(second.counter).toBeGreaterThan(first.counter);
      // The guest's RAM is the mount's memory image: the main RAM block only (the small ones were streamed).
      expect((await stat(synth.cloudletfs?.paths.memory ?? '')).size).toBe(base.spec.memoryMiB * 1024 * 1024);
      await synth.arrived;
      const check = await synth.vm.console.run('sha256sum -c /tmp/blob.sha', { timeoutMs: 60_000 });
      expect(check).toContain('/tmp/blob: OK');
      expect((await readAppState(port)).counter).toBeGreaterThan(second.counter);
      const ram = synth.cloudletfs?.stats().memory;
      console.log(
        `memory on demand: ${memorySegments} memory segments, ${appliedAtResume} applied at resume; ` +
          `resumed ${resumedAt.toFixed(2)} s, state answered ${answeredAt.toFixed(2)} s, all sent ` +
          `${(Math.max(...server.requests.map((r) => r.finishedAt ?? 0)) / 1000).toFixed(2)} s ` +
          `(${(server.size / 1e6).toFixed(1)} MB at 2 MB/s); RAM pages read ${ram?.chunksFetched}, written ${ram?.chunksStored}; ` +
          `stages ${JSON.stringify(synth.timings)}`,
      );
    } finally {
      await synth.stop();
      await server.close();
    }
    expect(await cloudletMountsUnder(work)).toEqual([]);
    expect(await readdir(join(registry.home, 'synthesis'))).toEqual([]);
  });

  it("with earlyStartMemory 'first' resumes only after every memory segment", async () => {
    const { server, synth, appliedAtResume, resumedAt } = await synthesizeThrottled('first');
    try {
      expect(appliedAtResume).toBeGreaterThanOrEqual(memorySegments);
      expect((await readAppState(synth.vm.hostPort(80))).tmpfs).toBe('app-tmpfs-file');
      console.log(`memory first: resumed ${resumedAt.toFixed(2)} s (${appliedAtResume} segments applied)`);
    } finally {
      await synth.stop();
      await server.close();
    }
    expect(await cloudletMountsUnder(work)).toEqual([]);
  });
});
