// VCDIFF specifics beyond the conformance suite: the wasm heap is fixed-size, so bad input must
// not leak it or leave the module unusable.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createVcdiffCodec, type DeltaCodec, DeltaCodecError } from '../src/index.js';

let codec: DeltaCodec;
beforeAll(async () => {
  codec = await createVcdiffCodec();
});

describe('vcdiff codec', () => {
  it('still works after 20 000 rejected deltas (no heap leak in the fixed wasm memory)', () => {
    const source = randomBytes(4096);
    const target = Uint8Array.from(source);
    target[17] = (target[17] as number) ^ 1;
    const good = codec.encode(target, source);
    for (let i = 0; i < 20_000; i++) {
      const bad = Uint8Array.from(good);
      bad[i % bad.length] = (bad[i % bad.length] as number) ^ (1 + (i % 255));
      try {
        codec.decode(bad, source);
      } catch (e) {
        expect(e).toBeInstanceOf(DeltaCodecError);
      }
    }
    expect(codec.decode(codec.encode(target, source), source)).toEqual(target);
  }, 60_000);

  it('refuses a delta made for a longer target', () => {
    const source = randomBytes(4096);
    const delta = codec.encode(randomBytes(4096), source);
    expect(() => codec.decode(delta, source.subarray(0, 2048))).toThrow(DeltaCodecError);
  });

  it('second createVcdiffCodec shares the loaded module', async () => {
    const again = await createVcdiffCodec();
    const s = randomBytes(4096);
    expect(again.decode(codec.encode(s, s), s)).toEqual(new Uint8Array(s));
  });
});
