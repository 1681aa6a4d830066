import type { OverlayStatistics } from './manifest.js';
import { CHUNK_SPACES, RECORD_KINDS } from './records.js';

export type SpaceStatistics = OverlayStatistics['memory'];

export function emptySpaceStatistics(): SpaceStatistics {
  return Object.fromEntries(RECORD_KINDS.map((k) => [k, { count: 0, bytes: 0 }])) as SpaceStatistics;
}

export function emptyStatistics(): OverlayStatistics {
  return Object.fromEntries(CHUNK_SPACES.map((s) => [s, emptySpaceStatistics()])) as OverlayStatistics;
}

/** Adds `from`'s counts and bytes into `into`. */
export function addStatistics(into: SpaceStatistics, from: SpaceStatistics): void {
  for (const kind of RECORD_KINDS) {
    into[kind].count += from[kind].count;
    into[kind].bytes += from[kind].bytes;
  }
}
