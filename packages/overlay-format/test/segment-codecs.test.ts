import { xzCodec } from '../src/codecs/xz-codec.js';
import { zstdCodec } from '../src/codecs/zstd-codec.js';
import { segmentCodecConformance } from './segment-codec.suite.js';

segmentCodecConformance(zstdCodec(), 3);
segmentCodecConformance(zstdCodec(), 19);
segmentCodecConformance(xzCodec(), 1);
segmentCodecConformance(xzCodec(), 6);
