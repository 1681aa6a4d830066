import type { MigrationStreamLimits } from './types.js';

export type ResolvedLimits = Required<MigrationStreamLimits>;

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  maxBlockBytes: 1024 * 1024 * MiB, // 1 TiB
  maxBlocks: 1024,
  maxDeviceTailBytes: 64 * MiB,
  maxVmdescBytes: 16 * MiB,
});

export function resolveLimits(limits: MigrationStreamLimits | undefined): ResolvedLimits {
  return { ...DEFAULT_LIMITS, ...limits };
}
