// Interop: VCDIFF deltas from createVcdiffCodec must decode with Debian's xdelta3 CLI (3.0.11).
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { createVcdiffCodec, type DeltaCodec } from '../src/index.js';

const hasCli = (() => {
  try {
    execFileSync('xdelta3', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function page(seed: number): Uint8Array {
  let x = seed * 2654435761 + 1;
  return Uint8Array.from({ length: 4096 }, (_, i) => {
    x = (x * 1103515245 + 12345) >>> 0;
    return i % 64 < 40 ? (x >>> 24) & 0xff : i & 0xff; // random with structured stretches
  });
}

describe.skipIf(!hasCli)('VCDIFF interop with the xdelta3 CLI', () => {
  let codec: DeltaCodec;
  beforeAll(async () => {
    codec = await createVcdiffCodec();
  });

  const source = page(1);
  const flipped = Uint8Array.from(source);
  for (const at of [3, 700, 701, 4000]) flipped[at] = (flipped[at] as number) ^ 0x42;
  const shifted = new Uint8Array(4096);
  shifted.set(source.subarray(0, 1000));
  shifted.set(page(2).subarray(0, 24), 1000);
  shifted.set(source.subarray(1000, 4096 - 24), 1024);
  const rewritten = Uint8Array.from(source);
  rewritten.set(page(3).subarray(0, 300), 2048);
  const cases: [string, Uint8Array, Uint8Array][] = [
    ['flips', flipped, source],
    ['shifted tail', shifted, source],
    ['rewritten run', rewritten, source],
    ['identical', source, source],
    ['all different', page(4), source],
    ['zero source', source, new Uint8Array(4096)],
    ['short tail chunk', shifted.subarray(0, 1500), source.subarray(0, 1500)],
  ];

  it.each(cases)('%s: `xdelta3 -d -s source delta out` rebuilds the target', async (_, target, src) => {
    const dir = testTempDir('cloudlet-delta-');
    const delta = codec.encode(target, src);
    await writeFile(join(dir, 'source.bin'), src);
    await writeFile(join(dir, 'delta.vcdiff'), delta);
    execFileSync('xdelta3', [
      '-d',
      '-s',
      join(dir, 'source.bin'),
      join(dir, 'delta.vcdiff'),
      join(dir, 'out.bin'),
    ]);
    expect(new Uint8Array(await readFile(join(dir, 'out.bin')))).toEqual(target);
  });

  it('decodes what the CLI encodes (without secondary compression)', async () => {
    const dir = testTempDir('cloudlet-delta-');
    await writeFile(join(dir, 'source.bin'), source);
    await writeFile(join(dir, 'target.bin'), shifted);
    execFileSync('xdelta3', [
      '-e',
      '-S',
      'none',
      '-A',
      '-s',
      join(dir, 'source.bin'),
      join(dir, 'target.bin'),
      join(dir, 'd.vcdiff'),
    ]);
    const delta = new Uint8Array(await readFile(join(dir, 'd.vcdiff')));
    expect(codec.decode(delta, source)).toEqual(shifted);
  });
});
