import type { OverlayStatistics } from './manifest.js';
import { CHUNK_SPACES, RECORD_KINDS } from './records.js';

export function emptyStatistics(): OverlayStatistics {
  const space = () =>
    Object.fromEntries(RECORD_KINDS.map((k) => [k, { count: 0, bytes: 0 }])) as OverlayStatistics['memory'];
  return Object.fromEntries(CHUNK_SPACES.map((s) => [s, space()])) as OverlayStatistics;
}
