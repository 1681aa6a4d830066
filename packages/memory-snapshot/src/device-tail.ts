import { MigrationStreamError } from './errors.js';
import { SECTION } from './format.js';
import type { ResolvedLimits } from './limits.js';

export interface SplitTail {
  deviceTail: Uint8Array;
  vmdesc: Uint8Array | null;
}

const VMDESC_HEADER_BYTES = 5; // 0x06 + be32 length

/**
 * Splits the bytes after the RAM END section into the device tail (device sections + QEMU_VM_EOF)
 * and the optional trailing vmdesc. Device bodies are not self-delimiting, so the end of the tail
 * is found from the end of the stream: a QEMU_VM_VMDESCRIPTION header whose length reaches exactly
 * the last byte and that follows an EOF byte, or else a final EOF byte. Valid JSON holds no raw
 * 0x06 byte, so the first candidate found scanning backwards is the real header.
 * `restOffset` is the stream offset of rest[0].
 */
export function splitDeviceTail(
  rest: Uint8Array,
  restOffset: number,
  hasSectionFooters: boolean,
  limits: ResolvedLimits,
): SplitTail {
  let tailEnd = rest.length;
  let vmdesc: Uint8Array | null = null;
  for (let p = rest.length - VMDESC_HEADER_BYTES; p >= 1; p--) {
    if (rest[p] !== SECTION.VMDESCRIPTION || rest[p - 1] !== SECTION.EOF) continue;
    const len =
      (((rest[p + 1] as number) << 24) |
        ((rest[p + 2] as number) << 16) |
        ((rest[p + 3] as number) << 8) |
        (rest[p + 4] as number)) >>>
      0;
    if (p + VMDESC_HEADER_BYTES + len !== rest.length) continue;
    if (len > limits.maxVmdescBytes) {
      throw new MigrationStreamError('absurd-size', restOffset + p, `vmdesc of ${len} bytes`);
    }
    tailEnd = p;
    vmdesc = rest.subarray(p + VMDESC_HEADER_BYTES);
    break;
  }
  const deviceTail = rest.subarray(0, tailEnd);
  if (!looksComplete(deviceTail, hasSectionFooters)) {
    throw new MigrationStreamError(
      'truncated',
      restOffset + rest.length,
      'stream does not end with QEMU_VM_EOF',
    );
  }
  if (deviceTail.length > limits.maxDeviceTailBytes) {
    throw new MigrationStreamError('absurd-size', restOffset, `device tail of ${deviceTail.length} bytes`);
  }
  return { deviceTail, vmdesc };
}

/**
 * A complete tail ends with the EOF byte, and when sections carry footers, the EOF byte directly
 * follows the last device section's footer (0x7e + be32 id). This catches nearly every truncation
 * inside a device body, where a bare 0x00 is common.
 */
export function looksComplete(tail: Uint8Array, hasSectionFooters: boolean): boolean {
  const n = tail.length;
  if (n === 0 || tail[n - 1] !== SECTION.EOF) return false;
  if (n === 1) return true;
  return tail[0] === SECTION.FULL && (!hasSectionFooters || (n >= 7 && tail[n - 6] === SECTION.FOOTER));
}
