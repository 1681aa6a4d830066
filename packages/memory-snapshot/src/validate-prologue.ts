import { parseConfiguration } from './configuration.js';
import { Cursor, NeedMoreBytes, nameToBytes } from './cursor.js';
import { MigrationStreamError } from './errors.js';
import { IGNORE_SHARED_CAPABILITY, PAGE_SIZE, QEMU_VM_FILE_VERSION, SECTION } from './format.js';
import { DEFAULT_LIMITS } from './limits.js';
import type { StreamPrologue } from './types.js';

/** A block of the table as the writer needs it: encoded name and length. */
export interface EncodedBlock {
  name: string;
  nameBytes: Uint8Array;
  length: number;
  mrAddr: bigint | undefined;
}

/**
 * Checks that a prologue can be written as a stream QEMU will parse the same way: its configuration
 * bytes parse to the same machine type and capabilities, and the block table is well-formed.
 */
export function validatePrologue(prologue: StreamPrologue): EncodedBlock[] {
  const fail = (code: 'inconsistent-prologue' | 'absurd-size' | 'bad-block-table', detail: string) =>
    new MigrationStreamError(code, 0, `prologue: ${detail}`);
  if (prologue.version !== QEMU_VM_FILE_VERSION)
    throw fail('inconsistent-prologue', `version ${prologue.version}`);
  for (const id of [prologue.ramSectionId, prologue.ramInstanceId, prologue.ramVersionId]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) throw fail('absurd-size', `section field ${id}`);
  }

  // Parse the configuration with a sentinel START byte after it, so its end is recognisable.
  const config = new Uint8Array(prologue.configBytes.length + 1);
  config.set(prologue.configBytes);
  config[prologue.configBytes.length] = SECTION.START;
  const cur = new Cursor(config, 9);
  try {
    const parsed = parseConfiguration(cur);
    if (cur.pos !== prologue.configBytes.length) throw new NeedMoreBytes();
    if (
      parsed.machineType !== prologue.machineType ||
      parsed.capabilities.join('\n') !== prologue.capabilities.join('\n')
    ) {
      throw fail('inconsistent-prologue', 'configBytes disagree with machineType/capabilities');
    }
  } catch (e) {
    if (e instanceof NeedMoreBytes)
      throw fail('inconsistent-prologue', 'configBytes is not one configuration section');
    if (e instanceof MigrationStreamError && e.code !== 'inconsistent-prologue') {
      throw fail('inconsistent-prologue', `configBytes do not parse: ${e.message}`);
    }
    throw e;
  }

  const withMrAddr = prologue.capabilities.includes(IGNORE_SHARED_CAPABILITY);
  if (prologue.blocks.length === 0 || prologue.blocks.length > DEFAULT_LIMITS.maxBlocks) {
    throw fail('absurd-size', `${prologue.blocks.length} RAM blocks`);
  }
  const seen = new Set<string>();
  return prologue.blocks.map((b) => {
    const nameBytes = nameToBytes(b.name);
    if (nameBytes === null || nameBytes.length === 0 || nameBytes.length > 255) {
      throw fail('absurd-size', `RAM block name "${b.name}" must be 1-255 one-byte chars`);
    }
    if (seen.has(b.name)) throw fail('bad-block-table', `duplicate RAM block "${b.name}"`);
    seen.add(b.name);
    if (
      !Number.isInteger(b.length) ||
      b.length <= 0 ||
      b.length % PAGE_SIZE !== 0 ||
      b.length > DEFAULT_LIMITS.maxBlockBytes
    ) {
      throw fail('absurd-size', `RAM block "${b.name}" length ${b.length}`);
    }
    if ((b.mrAddr !== undefined) !== withMrAddr) {
      throw fail(
        'inconsistent-prologue',
        `RAM block "${b.name}" mrAddr must be set exactly when x-ignore-shared is on`,
      );
    }
    if (b.mrAddr !== undefined && (b.mrAddr < 0n || b.mrAddr >= 1n << 64n)) {
      throw fail('absurd-size', `RAM block "${b.name}" mrAddr ${b.mrAddr}`);
    }
    return { name: b.name, nameBytes, length: b.length, mrAddr: b.mrAddr };
  });
}
