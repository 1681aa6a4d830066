import { hash } from 'node:crypto';
import type { VmSpec } from '@cloudlet/qemu-driver';
import { canonicalJson } from './canonical-json.js';

/** What a base's identity is made of: digests of its content, never of where it is stored. */
export interface BaseContentDigests {
  diskBytes: number;
  /** sha256 of the disk chunk index's hash array (sha256 of each 4 KiB chunk, in order). */
  diskIndexSha256: string;
  memoryBytes: number;
  /** sha256 of memory.snap. */
  memorySha256: string;
  kernel?: { bytes: number; sha256: string } | undefined;
  initrd?: { bytes: number; sha256: string } | undefined;
}

/** First line of the hashed text; a new definition gets a new tag so old and new ids never collide. */
const BASE_ID_TAG = 'cloudlet-base-id/1';

/**
 * The base id: sha256 (hex) of a small versioned text that lists the content digests and the
 * canonical JSON of the portable spec. It changes when the disk, the memory snapshot, a boot file
 * or the spec changes; labels, timestamps, host facts and paths do not take part.
 *
 * Hashing the disk's chunk index instead of the disk file costs nothing extra (the index is built
 * anyway, and zero chunks are never hashed) and is as collision-resistant as sha256; the byte
 * length is included because the last chunk is hashed zero-padded.
 */
export function computeBaseId(digests: BaseContentDigests, spec: VmSpec): string {
  const file = (f: { bytes: number; sha256: string } | undefined) => (f ? `${f.bytes} ${f.sha256}` : '-');
  const text = [
    BASE_ID_TAG,
    `disk ${digests.diskBytes} ${digests.diskIndexSha256}`,
    `memory ${digests.memoryBytes} ${digests.memorySha256}`,
    `kernel ${file(digests.kernel)}`,
    `initrd ${file(digests.initrd)}`,
    `spec ${canonicalJson(spec)}`,
    '',
  ].join('\n');
  return hash('sha256', text, 'hex');
}
