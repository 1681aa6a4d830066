// Constants of QEMU's migration stream, version 3 (migration/savevm.c and migration/ram.c in QEMU 7.2).

export const QEMU_VM_FILE_MAGIC = 0x5145564d; // "QEVM"
export const QEMU_VM_FILE_VERSION = 3;

export const SECTION = {
  EOF: 0x00,
  START: 0x01,
  PART: 0x02,
  END: 0x03,
  FULL: 0x04,
  SUBSECTION: 0x05,
  VMDESCRIPTION: 0x06,
  CONFIGURATION: 0x07,
  FOOTER: 0x7e,
} as const;

/** Flags in the low bits of a RAM record header (the high bits are the page offset in its block). */
export const RAM_FLAG = {
  ZERO: 0x02,
  MEM_SIZE: 0x04,
  PAGE: 0x08,
  EOS: 0x10,
  CONTINUE: 0x20,
} as const;

/** x86 target page size; the low 12 bits of a record header hold its flags. */
export const PAGE_SIZE = 4096;
export const FLAG_MASK = PAGE_SIZE - 1;

/** 2^32, to combine two be32 halves into a JS number without BigInt. */
export const TWO_POW_32 = 0x1_0000_0000;

export const RAM_SECTION_NAME = 'ram';
export const CAPABILITIES_SUBSECTION = 'configuration/capabilities';
export const UUID_SUBSECTION = 'configuration/uuid';
export const TARGET_PAGE_BITS_SUBSECTION = 'configuration/target-page-bits';
/** With this capability the block table carries each block's guest address (mr_addr). */
export const IGNORE_SHARED_CAPABILITY = 'x-ignore-shared';
