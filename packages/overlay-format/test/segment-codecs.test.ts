import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { xzCodec } from '../src/codecs/xz-codec.js';
import { zstdCodec } from '../src/codecs/zstd-codec.js';
import { segmentCodecConformance } from './segment-codec.suite.js';

segmentCodecConformance(zstdCodec(), 3);
segmentCodecConformance(zstdCodec(), 19);
segmentCodecConformance(xzCodec(), 1);
segmentCodecConformance(xzCodec(), 6);

describe('xz segments', () => {
  it("are plain .xz streams (LZMA2 only: raw pages carry their own x86 transform), which Debian's xz decodes", async () => {
    const data = Buffer.concat([readFileSync(process.execPath).subarray(0, 256 * 1024), randomBytes(4096)]);
    const compressed = await xzCodec().compress(data, 6);
    const file = join(testTempDir('xz-interop-'), 'segment.xz');
    writeFileSync(file, compressed);
    expect(execFileSync('xz', ['--robot', '--list', '-vv', file], { encoding: 'utf8' })).toMatch(
      /\t--lzma2=dict=[0-9]+[KM]iB$/m,
    );
    expect(Buffer.compare(execFileSync('xz', ['-dc', file], { maxBuffer: 1 << 24 }), data)).toBe(0);
  });
});

describe('zstd segments', () => {
  const zstdAt = (data: Uint8Array, level: number) =>
    compress(data, { compressionLevel: level, checksumFlag: true });
  const code = readFileSync(process.execPath).subarray(0, 512 * 1024);

  it('default to level 19', () => {
    expect(zstdCodec().defaultLevel).toBe(19);
  });

  it("are level 1's frame where level 1 saves under 2 % (the search of a high level would find nothing)", async () => {
    const random = randomBytes(256 * 1024);
    const out = await zstdCodec().compress(random, 19);
    expect(Buffer.from(out).equals(zstdAt(random, 1))).toBe(true);
    expect(Buffer.from(await zstdCodec().decompress(out, random.length)).equals(random)).toBe(true);
  });

  it('are the asked level where the data compresses', async () => {
    const out = await zstdCodec().compress(code, 19);
    expect(Buffer.from(out).equals(zstdAt(code, 19))).toBe(true);
    expect(out.length).toBeLessThan(zstdAt(code, 1).length);
  });
});
