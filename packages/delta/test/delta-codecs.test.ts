import { beforeAll } from 'vitest';
import { createDeltaCodecs, type DeltaCodecs } from '../src/index.js';
import { runDeltaCodecConformance } from './delta-codec.conformance.js';

let codecs: DeltaCodecs;
beforeAll(async () => {
  codecs = await createDeltaCodecs();
});

runDeltaCodecConformance('xor', () => codecs.xor);
runDeltaCodecConformance('vcdiff', () => codecs.vcdiff);
