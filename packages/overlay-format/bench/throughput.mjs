// Writer/reader throughput on VM-like records: node bench/throughput.mjs [MiB] [zstd,xz] (after building dist).
// Records: bench/records.mjs. READ_WORKERS sets the reader's decompression threads (default 2).
import { rmSync } from 'node:fs';
import { createOverlayWriter, openOverlay, xzCodec, zstdCodec } from '../dist/index.js';
import { benchRecords } from './records.mjs';

const totalMiB = Number(process.argv[2] ?? 64);
const { records, fields } = benchRecords(totalMiB);

const codecs = (process.argv[3] ?? 'zstd,xz').split(',');
for (const [codec, level] of [
  [zstdCodec(), 3],
  [xzCodec(), 6],
].filter(([c]) => codecs.includes(c.name))) {
  const file = `/tmp/overlay-bench-${codec.name}.zip`;
  let t = performance.now();
  const writer = createOverlayWriter({ file, codec, level, workers: Number(process.env.WORKERS ?? 2) });
  for (const r of records) await writer.add(r);
  const { manifest, bytes } = await writer.finish(fields);
  const writeS = (performance.now() - t) / 1000;
  const recordBytes = manifest.segments.reduce((n, s) => n + s.uncompressedBytes, 0);
  t = performance.now();
  const overlay = await openOverlay(file, { workers: Number(process.env.READ_WORKERS ?? 2) });
  let n = 0;
  for await (const _ of overlay.records()) n++;
  await overlay.close();
  const readS = (performance.now() - t) / 1000;
  const mb = recordBytes / 1e6;
  console.log(
    `${codec.name} ${level}: ${n} records, ${mb.toFixed(1)} MB encoded → ${(bytes / 1e6).toFixed(1)} MB zip ` +
      `(${manifest.segments.length} segments); write ${(mb / writeS).toFixed(1)} MB/s, read ${(mb / readS).toFixed(1)} MB/s`,
  );
  rmSync(file);
}
