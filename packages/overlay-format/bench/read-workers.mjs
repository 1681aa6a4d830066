// Reader throughput by decompression threads: node bench/read-workers.mjs [MiB] [runs] [zstd|xz] (after
// building dist). Writes one overlay (zstd 3 or xz 6) of bench/records.mjs records, then reads it whole with workers 0, 1, 2
// (segmentsInOrder, 4 in flight), best of `runs` each; MB/s of encoded records. CONSUME_MS_PER_MB
// makes the consumer burn that much main-thread CPU per MB of records (as applying them would).
import { rmSync } from 'node:fs';
import { createOverlayWriter, openOverlay, segmentCodec } from '../dist/index.js';
import { benchRecords } from './records.mjs';

const totalMiB = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 5);
const consumeMsPerMb = Number(process.env.CONSUME_MS_PER_MB ?? 0);
const busy = (ms) => {
  for (const end = performance.now() + ms; performance.now() < end; );
};
const codec = segmentCodec(process.argv[4] ?? 'zstd');
const { records, fields } = benchRecords(totalMiB);
const file = `/tmp/overlay-bench-read-${process.pid}.zip`;
const writer = createOverlayWriter({ file, codec, workers: 2 });
for (const r of records) await writer.add(r);
const { manifest, bytes } = await writer.finish(fields);
const mb = manifest.segments.reduce((n, s) => n + s.uncompressedBytes, 0) / 1e6;
console.log(
  `${mb.toFixed(1)} MB of records in ${(bytes / 1e6).toFixed(1)} MB (${manifest.segments.length} segments)`,
);
for (const workers of [0, 1, 2]) {
  const seconds = [];
  for (let run = 0; run < runs; run++) {
    const t = performance.now();
    const overlay = await openOverlay(file, { workers });
    for await (const { info } of overlay.segmentsInOrder())
      busy((info.uncompressedBytes / 1e6) * consumeMsPerMb);
    await overlay.close();
    seconds.push((performance.now() - t) / 1000);
  }
  const rates = seconds.map((s) => mb / s).sort((a, b) => a - b);
  console.log(
    `workers ${workers}: best ${rates.at(-1).toFixed(0)} MB/s, median ${rates[Math.floor(rates.length / 2)].toFixed(0)} MB/s`,
  );
}
rmSync(file);
