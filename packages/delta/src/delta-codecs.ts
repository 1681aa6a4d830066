import type { DeltaCodec } from './delta-codec.js';
import { createVcdiffCodec } from './vcdiff-codec.js';
import { xorCodec } from './xor-codec.js';

/** Every delta codec, by name. */
export interface DeltaCodecs {
  readonly xor: DeltaCodec;
  readonly vcdiff: DeltaCodec;
}

/** All codecs, ready to use (awaits the VCDIFF wasm load once; later calls reuse it). */
export async function createDeltaCodecs(): Promise<DeltaCodecs> {
  return { xor: xorCodec, vcdiff: await createVcdiffCodec() };
}
