import { resolve } from 'node:path';
import { describeOverlay, type OverlayDescription, openOverlay } from '@cloudlet/overlay-format';
import type { Command } from 'commander';
import { print } from '../context.js';
import { formatBytes, table } from '../format.js';

function render(d: OverlayDescription): string {
  const lines = [
    `base         ${d.baseId}`,
    `format       version ${d.formatVersion}, ${d.codec}, made by ${d.tool} at ${d.createdAt}`,
    `vm           disk ${formatBytes(d.vm.diskBytes)}, memory ${formatBytes(d.vm.memoryBytes)} (${d.vm.memoryPages} pages)`,
    `segments     ${d.segments.length}: ${formatBytes(d.compressedBytes)} compressed, ${formatBytes(d.uncompressedBytes)} uncompressed`,
    '',
  ];
  const kinds = Object.keys(
    d.spaces.memory.kinds,
  ) as (keyof OverlayDescription['spaces']['memory']['kinds'])[];
  const rows = [['KIND', 'MEMORY', 'MEMORY BYTES', 'DISK', 'DISK BYTES']];
  for (const kind of kinds) {
    const m = d.spaces.memory.kinds[kind];
    const k = d.spaces.disk.kinds[kind];
    rows.push([kind, String(m.count), String(m.bytes), String(k.count), String(k.bytes)]);
  }
  rows.push(['total', String(d.spaces.memory.chunks), '', String(d.spaces.disk.chunks), '']);
  lines.push(table(rows), '');
  const segments = [['SEGMENT', 'SPACE', 'RECORDS', 'CHUNKS', 'COMPRESSED', 'UNCOMPRESSED']];
  for (const s of d.segments) {
    segments.push([
      s.entry,
      s.space,
      String(s.records),
      `${s.firstIndex}-${s.lastIndex}`,
      String(s.compressedBytes),
      String(s.uncompressedBytes),
    ]);
  }
  lines.push(table(segments));
  return lines.join('\n');
}

export function registerInfoOverlay(program: Command): void {
  program
    .command('info-overlay')
    .description('show what an overlay holds: base id, sizes, records per kind, segments (checks the file)')
    .argument('<overlay.zip>', 'overlay file')
    .option('--json', 'machine-readable output')
    .action(async (file: string, options: { json?: boolean }) => {
      const overlay = await openOverlay(resolve(file));
      try {
        const description = describeOverlay(overlay.manifest);
        print(options.json === true ? JSON.stringify(description, null, 2) : render(description));
      } finally {
        await overlay.close();
      }
    });
}
