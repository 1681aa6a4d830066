import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { manifestFields } from './fixtures.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

// The compression workers are eval'd source that resolves zstd-napi from the bundle's location:
// check that path from a plain Node process, not only from TypeScript under vitest.
describe.skipIf(!existsSync(dist))('the tsup bundle', () => {
  it('writes with worker threads and reads back, from a plain node process', () => {
    const file = join(testTempDir('overlay-format-'), 'from-dist.zip');
    const script = `
      const m = await import(${JSON.stringify(dist)});
      const w = m.createOverlayWriter({ file: ${JSON.stringify(file)}, workers: 2, targetSegmentBytes: 8192 });
      for (let i = 0; i < 100; i++)
        await w.add({ space: 'memory', index: i, encoding: { kind: 'raw', data: new Uint8Array(4096).fill(i) } });
      await w.finish(JSON.parse(process.env.FIELDS));
      const r = await m.openOverlay(${JSON.stringify(file)});
      let n = 0;
      for await (const x of r.records()) if (x.encoding.data[0] === x.index) n++;
      await r.close();
      console.log(r.segments.length > 1 ? n : -1);
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, FIELDS: JSON.stringify(manifestFields()) },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(output.trim()).toBe('100');
  }, 40_000);

  it("exits when a reader with decompression workers is left open (idle workers are unref'd)", () => {
    const file = join(testTempDir('overlay-format-'), 'left-open.zip');
    const script = `
      const m = await import(${JSON.stringify(dist)});
      const w = m.createOverlayWriter({ file: ${JSON.stringify(file)}, workers: 0 });
      await w.add({ space: 'memory', index: 1, encoding: { kind: 'zero' } });
      await w.finish(JSON.parse(process.env.FIELDS));
      const r = await m.openOverlay(${JSON.stringify(file)}, { workers: 2 });
      for await (const s of r.segmentsInOrder()) console.log(s.records.length);
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, FIELDS: JSON.stringify(manifestFields()) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(output.trim()).toBe('1');
  }, 30_000);
});
