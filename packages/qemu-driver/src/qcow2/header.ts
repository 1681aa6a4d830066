// Encodes cluster 0 of a qcow2 version 3 image (see QEMU's docs/interop/qcow2.txt): the fixed header,
// the backing-format extension, the end-of-extensions marker and the backing file name.

const MAGIC = 0x514649fb; // 'QFI\xfb'
const HEADER_LENGTH = 104; // the version 3 header without the optional compression-type field
const BACKING_FORMAT_EXTENSION = 0xe2792aca;
/** QEMU refuses backing file names longer than this. */
export const MAX_BACKING_NAME_BYTES = 1023;

export interface Qcow2HeaderFields {
  readonly clusterBits: number;
  readonly virtualSize: number;
  readonly l1Entries: number;
  readonly l1Offset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  readonly refcountOrder: number;
  readonly backingFile: string;
  readonly backingFormat: string;
}

const pad8 = (n: number) => Math.ceil(n / 8) * 8;

/** Bytes cluster 0 needs for the header, its extensions and the backing file name. */
export function headerBytes(backingFile: string, backingFormat: string): number {
  const extensions = 8 + pad8(Buffer.byteLength(backingFormat)) + 8;
  return HEADER_LENGTH + extensions + Buffer.byteLength(backingFile);
}

/** The header as a whole cluster (the rest zero-filled). */
export function encodeHeaderCluster(fields: Qcow2HeaderFields): Buffer {
  const cluster = Buffer.alloc(2 ** fields.clusterBits);
  const name = Buffer.from(fields.backingFile);
  const format = Buffer.from(fields.backingFormat);
  const extensionsAt = HEADER_LENGTH;
  const endMarkerAt = extensionsAt + 8 + pad8(format.length);
  const nameAt = endMarkerAt + 8;

  cluster.writeUInt32BE(MAGIC, 0);
  cluster.writeUInt32BE(3, 4); // version
  cluster.writeBigUInt64BE(BigInt(nameAt), 8);
  cluster.writeUInt32BE(name.length, 16);
  cluster.writeUInt32BE(fields.clusterBits, 20);
  cluster.writeBigUInt64BE(BigInt(fields.virtualSize), 24);
  // 32 crypt_method: 0 (none)
  cluster.writeUInt32BE(fields.l1Entries, 36);
  cluster.writeBigUInt64BE(BigInt(fields.l1Offset), 40);
  cluster.writeBigUInt64BE(BigInt(fields.refcountTableOffset), 48);
  cluster.writeUInt32BE(fields.refcountTableClusters, 56);
  // 60 nb_snapshots, 64 snapshots_offset, 72/80/88 incompatible/compatible/autoclear features: all 0
  cluster.writeUInt32BE(fields.refcountOrder, 96);
  cluster.writeUInt32BE(HEADER_LENGTH, 100);

  cluster.writeUInt32BE(BACKING_FORMAT_EXTENSION, extensionsAt);
  cluster.writeUInt32BE(format.length, extensionsAt + 4);
  format.copy(cluster, extensionsAt + 8);
  // end-of-extensions: type 0, length 0 (already zero)
  name.copy(cluster, nameAt);
  return cluster;
}
