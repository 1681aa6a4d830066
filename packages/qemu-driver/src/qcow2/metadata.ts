// Places and encodes the metadata written at close: L2 tables, the L1 table, the refcount table and
// refcount blocks, appended after the data clusters so no data ever has to move.

/** Bit 63 of L1/L2 entries: refcount is exactly 1, so QEMU may write in place (qemu-img check insists). */
export const COPIED = 1n << 63n;
/** 16-bit refcounts: plenty, as every cluster of a fresh image is referenced exactly once. */
export const REFCOUNT_ORDER = 4;
const REFCOUNT_BYTES = 2;

export interface MetadataLayout {
  /** Cluster index of each L2 table, in the order of `l1Indexes`. */
  readonly l2Clusters: number[];
  readonly l1Cluster: number;
  readonly l1Clusters: number;
  readonly refcountTableCluster: number;
  readonly refcountTableClusters: number;
  readonly refcountBlockCluster: number;
  readonly refcountBlocks: number;
  /** Clusters in the finished file, all with refcount 1. */
  readonly totalClusters: number;
}

export function layoutMetadata(
  clusterSize: number,
  firstFreeCluster: number,
  l2Tables: number,
  l1Entries: number,
): MetadataLayout {
  const l2Clusters = Array.from({ length: l2Tables }, (_, i) => firstFreeCluster + i);
  const l1Cluster = firstFreeCluster + l2Tables;
  const l1Clusters = Math.ceil((l1Entries * 8) / clusterSize);
  const beforeRefcounts = l1Cluster + l1Clusters;
  // The refcount structures count themselves too: grow them until they cover the whole file.
  const refcountsPerBlock = clusterSize / REFCOUNT_BYTES;
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const total = beforeRefcounts + tableClusters + blocks;
    const neededBlocks = Math.ceil(total / refcountsPerBlock);
    const neededTable = Math.ceil((neededBlocks * 8) / clusterSize);
    if (neededBlocks === blocks && neededTable === tableClusters) break;
    blocks = neededBlocks;
    tableClusters = neededTable;
  }
  return {
    l2Clusters,
    l1Cluster,
    l1Clusters,
    refcountTableCluster: beforeRefcounts,
    refcountTableClusters: tableClusters,
    refcountBlockCluster: beforeRefcounts + tableClusters,
    refcountBlocks: blocks,
    totalClusters: beforeRefcounts + tableClusters + blocks,
  };
}

/** L1 table: each present L2 table's offset with COPIED set; absent ones stay 0 (read from the backing file). */
export function encodeL1(layout: MetadataLayout, clusterSize: number, l1Indexes: readonly number[]): Buffer {
  const table = Buffer.alloc(layout.l1Clusters * clusterSize);
  l1Indexes.forEach((l1Index, i) => {
    const l2Cluster = layout.l2Clusters[i] ?? 0;
    table.writeBigUInt64BE(BigInt(l2Cluster * clusterSize) | COPIED, l1Index * 8);
  });
  return table;
}

export function encodeRefcountTable(layout: MetadataLayout, clusterSize: number): Buffer {
  const table = Buffer.alloc(layout.refcountTableClusters * clusterSize);
  for (let i = 0; i < layout.refcountBlocks; i++) {
    table.writeBigUInt64BE(BigInt((layout.refcountBlockCluster + i) * clusterSize), i * 8);
  }
  return table;
}

/** Every cluster up to the end of the file is used exactly once; entries past the end stay 0. */
export function encodeRefcountBlocks(layout: MetadataLayout, clusterSize: number): Buffer {
  const blocks = Buffer.alloc(layout.refcountBlocks * clusterSize);
  for (let cluster = 0; cluster < layout.totalClusters; cluster++) {
    blocks.writeUInt16BE(1, cluster * REFCOUNT_BYTES);
  }
  return blocks;
}
