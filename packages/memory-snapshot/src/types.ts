/** One entry of the RAM block table sent in the RAM START section. */
export interface RamBlock {
  /** QEMU's idstr, e.g. "pc.ram" or "0000:00:03.0/virtio-net-pci.rom". */
  name: string;
  /** used_length in bytes, a multiple of 4096. */
  length: number;
  /** Guest address of the block's memory region; present exactly when x-ignore-shared is on. */
  mrAddr?: bigint;
}

/** Everything before the first page record: header, configuration and the RAM START section. */
export interface StreamPrologue {
  /** Stream file version (always 3). */
  version: number;
  /** Machine type from the configuration section, e.g. "pc-i440fx-7.2". */
  machineType: string;
  /** Migration capabilities listed in "configuration/capabilities" (empty when the subsection is absent). */
  capabilities: string[];
  /** The configuration section body (after the 0x07 type byte), re-emitted verbatim by the writer. */
  configBytes: Uint8Array;
  ramSectionId: number;
  ramInstanceId: number;
  ramVersionId: number;
  blocks: RamBlock[];
  /** Whether every section ends with a footer (0x7e + be32 section id). */
  hasSectionFooters: boolean;
}

/** One RAM page record. */
export interface RamPage {
  /** Name of the RAM block the page belongs to. */
  block: string;
  /** Byte offset of the page inside its block (a multiple of 4096). */
  offset: number;
  /** The 4096 page bytes, or null for a zero page. */
  data: Uint8Array | null;
}

export type MigrationStreamItem =
  | { kind: 'prologue'; prologue: StreamPrologue }
  /**
   * `dataOffset`: where the page's 4096 bytes start in the stream (null for a zero record), so a caller can
   * later read a page straight from a snapshot file instead of keeping a flat copy of the RAM.
   */
  | { kind: 'page'; page: RamPage; dataOffset: number | null }
  /** Every section after the RAM END section, through the QEMU_VM_EOF byte (included). */
  | { kind: 'deviceTail'; bytes: Uint8Array }
  /** The QEMU_VM_VMDESCRIPTION JSON payload (without its 0x06 + be32 length header). */
  | { kind: 'vmdesc'; json: Uint8Array };

/** Sanity caps applied while reading. Exceeding one raises MigrationStreamError 'absurd-size'. */
export interface MigrationStreamLimits {
  /** Largest accepted RAM block (default 1 TiB). */
  maxBlockBytes?: number;
  /** Most RAM blocks in the table (default 1024). */
  maxBlocks?: number;
  /** Largest device tail, EOF byte included (default 64 MiB). */
  maxDeviceTailBytes?: number;
  /** Largest vmdesc JSON (default 16 MiB). */
  maxVmdescBytes?: number;
}
