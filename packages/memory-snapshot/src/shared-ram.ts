import { MigrationStreamError } from './errors.js';
import { CAPABILITIES_SUBSECTION, IGNORE_SHARED_CAPABILITY, SECTION } from './format.js';
import type { StreamPrologue } from './types.js';

/**
 * The prologue of a stream whose RAM block `sharedBlock` is not in the stream because the destination maps
 * it from a shared file (`memory-backend-file,share=on` + capability `x-ignore-shared`): the capability is
 * added to the configuration section (QEMU refuses a stream whose capability differs from its own) and every
 * block gets its guest address. QEMU checks the address only for the shared block, which is the machine's
 * main RAM region and not mapped anywhere itself (aliases map it), so 0; for the others it reads and ignores
 * it. The caller leaves the shared block's pages out.
 */
export function withSharedRamBlock(prologue: StreamPrologue, sharedBlock: string): StreamPrologue {
  if (!prologue.blocks.some((b) => b.name === sharedBlock))
    throw new RangeError(`no RAM block "${sharedBlock}" in the stream`);
  if (prologue.capabilities.includes(IGNORE_SHARED_CAPABILITY)) return prologue;
  if (prologue.capabilities.length > 0)
    throw new MigrationStreamError(
      'inconsistent-prologue',
      0,
      `the stream already lists capabilities (${prologue.capabilities.join(', ')})`,
    );
  return {
    ...prologue,
    capabilities: [IGNORE_SHARED_CAPABILITY],
    configBytes: withCapabilitiesSubsection(prologue.configBytes, [IGNORE_SHARED_CAPABILITY]),
    blocks: prologue.blocks.map((b) => ({ ...b, mrAddr: 0n })),
  };
}

/**
 * Inserts `configuration/capabilities` right after the machine type: QEMU finds subsections by name, so
 * their order does not matter.
 */
function withCapabilitiesSubsection(config: Uint8Array, capabilities: readonly string[]): Uint8Array {
  const machineEnd = 4 + new DataView(config.buffer, config.byteOffset).getUint32(0);
  const name = Buffer.from(CAPABILITIES_SUBSECTION, 'latin1');
  const parts: Buffer[] = [
    Buffer.from([SECTION.SUBSECTION, name.length]),
    name,
    be32(1),
    be32(capabilities.length),
  ];
  for (const capability of capabilities) {
    const bytes = Buffer.from(capability, 'latin1');
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  return Buffer.concat([config.subarray(0, machineEnd), ...parts, config.subarray(machineEnd)]);
}

function be32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}
