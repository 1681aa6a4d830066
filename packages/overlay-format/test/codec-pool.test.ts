import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CodecPool, createCodecPool } from '../src/codec-pool.js';
import type { SegmentCodec } from '../src/codecs/segment-codec.js';
import { xzCodec } from '../src/codecs/xz-codec.js';
import { zstdCodec } from '../src/codecs/zstd-codec.js';
import { segmentCodecConformance } from './segment-codec.suite.js';

const pools: CodecPool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.close())));

/** The codec as the pool's workers run it: the worker source mirrors the codecs, so it meets their contract. */
function pooled(codec: SegmentCodec, level: number): SegmentCodec {
  const pool = createCodecPool(codec, 2, level);
  pools.push(pool);
  beforeAll(() => pool.booted); // before that, decompression runs on this thread
  return {
    ...codec,
    compress: (data) => pool.compress(new Uint8Array(data)), // compress transfers its input
    decompress: (data, size) => pool.decompress(data, size),
  };
}

segmentCodecConformance(pooled(zstdCodec(), 3), 3);
segmentCodecConformance(pooled(xzCodec(), 1), 1);

describe('a codec pool compressing', () => {
  const pool = createCodecPool(zstdCodec(), 2, 19);
  pools.push(pool);
  beforeAll(() => pool.booted);
  const text = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `row ${i} ${i * 31}`).join('\n'));

  it.each([
    ['incompressible data (the level-1 probe)', randomBytes(100_000)],
    ['compressible data', text],
  ])('writes what zstdCodec writes on %s', async (_, data) => {
    const expected = await zstdCodec().compress(data, 19);
    expect(Buffer.from(await pool.compress(new Uint8Array(data))).equals(expected)).toBe(true);
  });
});

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe.each([0, 2])('createCodecPool decompress (%i workers)', (workers) => {
  const pool = createCodecPool(zstdCodec(), workers);
  pools.push(pool);
  beforeAll(() => pool.booted);

  it('checks the sha256 before decompressing and names the entry', async () => {
    const data = randomBytes(10_000);
    const packed = await zstdCodec().compress(data, 3);
    const check = { sha256: sha256(packed), what: 'entry "segments/000007"' };
    expect(Buffer.from(await pool.decompress(packed, data.length, check)).equals(data)).toBe(true);
    await expect(
      pool.decompress(packed, data.length, { ...check, sha256: '0'.repeat(64) }),
    ).rejects.toMatchObject({
      code: 'hash-mismatch',
      message: 'entry "segments/000007" does not match its sha256 in the manifest',
    });
  });

  it('leaves the caller a view into its own buffer intact', async () => {
    const packed = Buffer.from(await zstdCodec().compress(new Uint8Array(5000).fill(9), 3));
    const whole = Buffer.concat([Buffer.alloc(10), packed]);
    const out = await pool.decompress(whole.subarray(10), 5000);
    expect(out[4999]).toBe(9);
    expect(whole.subarray(10).equals(packed)).toBe(true);
  });
});

describe('a codec pool still booting', () => {
  it('decompresses on this thread meanwhile, with the same checks', async () => {
    const pool = createCodecPool(zstdCodec(), 2);
    pools.push(pool);
    const packed = await zstdCodec().compress(new Uint8Array(1000).fill(3), 3);
    const check = { sha256: sha256(packed), what: 'entry "x"' };
    expect((await pool.decompress(packed, 1000, check))[999]).toBe(3);
    await expect(pool.decompress(packed, 999, check)).rejects.toMatchObject({ code: 'bad-compressed-data' });
    await pool.booted;
    expect((await pool.decompress(packed, 1000, check))[999]).toBe(3);
  });
});

describe('a closed codec pool', () => {
  it('refuses work with invalid-use', async () => {
    const pool = createCodecPool(zstdCodec(), 1);
    await pool.close();
    await expect(pool.decompress(new Uint8Array(4), 4)).rejects.toMatchObject({ code: 'invalid-use' });
  });
});
