import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
