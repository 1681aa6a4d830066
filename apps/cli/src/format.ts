import type { BaseInfo } from '@cloudlet/base-registry';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export const shortId = (id: string) => id.slice(0, 12);

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => row[col]?.length ?? 0))) ?? [];
  return rows
    .map((row) =>
      row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0))).join('  '),
    )
    .join('\n');
}

/** What `list-base --json` prints for each base: stable field names, full id, absolute paths. */
export function baseJson(base: BaseInfo) {
  return {
    id: base.id,
    label: base.label ?? null,
    disk: base.paths.disk,
    memorySnapshot: base.paths.memory,
    diskBytes: base.diskBytes,
    memoryBytes: base.memoryBytes,
    memoryPages: base.memoryPages,
    qemuVersion: base.hostFacts.qemuVersion,
    machineType: base.hostFacts.machineType,
    cpuModel: base.hostFacts.cpuModel,
    createdAt: base.createdAt,
    addedAt: base.addedAt,
  };
}
