import { parseVmSpec } from '@cloudlet/qemu-driver';
import fc from 'fast-check';
import type { OverlayManifestFields } from '../src/manifest.js';
import { type ChunkSpace, type OverlayRecord, PAGE_SIZE } from '../src/records.js';

export const MEMORY_PAGES = 4096;
export const DISK_CHUNKS = 8192;

export function manifestFields(): OverlayManifestFields {
  return {
    base: { id: 'ab'.repeat(32), diskBytes: DISK_CHUNKS * PAGE_SIZE, memoryPages: MEMORY_PAGES },
    vm: {
      spec: parseVmSpec({ memoryMiB: 16, disks: [{ file: '/x/disk.raw', format: 'raw' }] }),
      diskBytes: DISK_CHUNKS * PAGE_SIZE,
      memoryPages: MEMORY_PAGES,
      ramBlocks: [
        { name: 'pc.ram', bytes: (MEMORY_PAGES - 16) * PAGE_SIZE },
        { name: '0000:00:02.0/vga.vram', bytes: 16 * PAGE_SIZE },
      ],
    },
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

const encoding = fc.oneof(
  fc.constant({ kind: 'zero' as const }),
  fc.record({ kind: fc.constant('base-memory' as const), index: fc.nat(MEMORY_PAGES - 1) }),
  fc.record({ kind: fc.constant('base-disk' as const), index: fc.nat(DISK_CHUNKS - 1) }),
  fc.record({
    kind: fc.constantFrom('xor' as const, 'vcdiff' as const),
    delta: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({
    kind: fc.constant('raw' as const),
    data: fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE }),
  }),
);

/** Valid record lists: memory first, each chunk once, self refs to chunks present earlier. */
export const recordLists = fc
  .tuple(
    fc.uniqueArray(fc.nat(MEMORY_PAGES - 1), { maxLength: 60 }),
    fc.uniqueArray(fc.nat(DISK_CHUNKS - 1), { maxLength: 60 }),
    fc.array(encoding, { minLength: 120, maxLength: 120 }),
    fc.array(fc.boolean(), { minLength: 120, maxLength: 120 }),
  )
  .map(([memory, disk, encodings, selfRefs]) => {
    const records: OverlayRecord[] = [];
    const addresses: [ChunkSpace, number][] = [
      ...memory.map((i) => ['memory', i] as [ChunkSpace, number]),
      ...disk.map((i) => ['disk', i] as [ChunkSpace, number]),
    ];
    addresses.forEach(([space, index], n) => {
      const earlier = records[Math.floor(n / 2)];
      const encodingOf = encodings[n] ?? { kind: 'zero' as const };
      records.push({
        space,
        index,
        encoding:
          selfRefs[n] && earlier !== undefined
            ? { kind: 'self', space: earlier.space, index: earlier.index }
            : encodingOf,
      });
    });
    return records;
  });

/** Plain copies, so records compare with toEqual whatever buffer type they came in. */
export function plain(records: OverlayRecord[]): unknown[] {
  return records.map((r) => {
    const e = r.encoding;
    if (e.kind === 'raw') return { ...r, encoding: { kind: e.kind, data: Array.from(e.data) } };
    if (e.kind === 'xor' || e.kind === 'vcdiff')
      return { ...r, encoding: { kind: e.kind, delta: Array.from(e.delta) } };
    return r;
  });
}
