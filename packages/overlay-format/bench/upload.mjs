// openOverlayUpload against openOverlay: node bench/upload.mjs [MiB] [runs] (after building dist).
// Writes one zstd-3 overlay of bench/records.mjs records, then, best of `runs`: the time from the first
// body byte to the manifest being readable (openOverlayUpload resolving), and MB/s of encoded records for
// reading every record of an upload fed from the file (64 KiB pieces, as fast as the disk gives them)
// against openOverlay on the finished file. WORKERS sets the decompression threads (default 2).
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOverlayWriter, openOverlay, openOverlayUpload } from '../dist/index.js';
import { benchRecords } from './records.mjs';

const totalMiB = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 5);
const workers = Number(process.env.WORKERS ?? 2);
const dir = mkdtempSync(join(tmpdir(), 'overlay-bench-upload-'));
const file = join(dir, 'overlay.zip');
const { records, fields } = benchRecords(totalMiB);
const writer = createOverlayWriter({ file, workers: 2 });
for (const r of records) await writer.add(r);
const { manifest, bytes } = await writer.finish(fields);
const mb = manifest.segments.reduce((n, s) => n + s.uncompressedBytes, 0) / 1e6;
console.log(
  `${mb.toFixed(1)} MB of records in ${(bytes / 1e6).toFixed(1)} MB (${manifest.segments.length} segments)`,
);

const readAll = async (reader) => {
  let n = 0;
  for await (const _ of reader.records()) n++;
  return n;
};
const best = (xs) => Math.min(...xs);
const open = [];
const upload = [];
const file_ = [];
for (let run = 0; run < runs; run++) {
  let first;
  const body = (async function* () {
    for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) {
      first ??= performance.now();
      yield chunk;
    }
  })();
  const t = performance.now();
  const up = await openOverlayUpload(body, { spoolDir: dir, maxBytes: 2 ** 40, workers });
  open.push(performance.now() - first);
  await readAll(up.reader);
  await up.done;
  await up.reader.close();
  upload.push((performance.now() - t) / 1000);
  const u = performance.now();
  const overlay = await openOverlay(file, { workers });
  await readAll(overlay);
  await overlay.close();
  file_.push((performance.now() - u) / 1000);
}
console.log(
  `first byte → manifest, chunk index and blobs readable: best ${best(open).toFixed(1)} ms, median ${open.sort((a, b) => a - b)[Math.floor(runs / 2)].toFixed(1)} ms`,
);
console.log(
  `openOverlayUpload (spool + read all): ${(mb / best(upload)).toFixed(0)} MB/s of records; openOverlay on the file: ${(mb / best(file_)).toFixed(0)} MB/s (workers ${workers})`,
);
rmSync(dir, { recursive: true });
