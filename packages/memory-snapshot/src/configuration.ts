import { bytesToName, type Cursor } from './cursor.js';
import { MigrationStreamError } from './errors.js';
import { CAPABILITIES_SUBSECTION, SECTION, TARGET_PAGE_BITS_SUBSECTION, UUID_SUBSECTION } from './format.js';

export interface Configuration {
  machineType: string;
  capabilities: string[];
}

const MAX_MACHINE_TYPE_BYTES = 256;
const MAX_CAPABILITIES = 256;

/**
 * Parses the QEMU_VM_CONFIGURATION body (vmstate "configuration"): be32 length + machine type, then
 * optional subsections (0x05, u8 len + name, be32 version, fields). It ends at the first byte that is
 * not 0x05, which is left unread. Throws NeedMoreBytes if the cursor's window is too short.
 */
export function parseConfiguration(cur: Cursor): Configuration {
  const nameAt = cur.offset;
  const nameLength = cur.be32();
  if (nameLength === 0 || nameLength > MAX_MACHINE_TYPE_BYTES) {
    throw new MigrationStreamError('absurd-size', nameAt, `machine type length ${nameLength}`);
  }
  const machineType = bytesToName(cur.bytesView(nameLength));
  const capabilities: string[] = [];
  while (cur.peekU8() === SECTION.SUBSECTION) {
    cur.u8();
    const subsectionAt = cur.offset;
    const name = cur.shortString('subsection name');
    cur.be32(); // subsection version_id; every known one is 1 and has a fixed layout
    if (name === CAPABILITIES_SUBSECTION) {
      const countAt = cur.offset;
      const count = cur.be32();
      if (count > MAX_CAPABILITIES) {
        throw new MigrationStreamError('absurd-size', countAt, `${count} capabilities`);
      }
      for (let i = 0; i < count; i++) capabilities.push(cur.shortString('capability name'));
    } else if (name === UUID_SUBSECTION) {
      cur.bytesView(16);
    } else if (name === TARGET_PAGE_BITS_SUBSECTION) {
      cur.be32();
    } else {
      throw new MigrationStreamError(
        'unknown-subsection',
        subsectionAt,
        `configuration subsection "${name}"`,
      );
    }
  }
  return { machineType, capabilities };
}
