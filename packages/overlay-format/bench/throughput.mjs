// Writer/reader throughput on VM-like records: node bench/throughput.mjs [MiB] [zstd,xz] (after building dist).
// Pages come from /usr/bin and /usr/lib binaries (compressible like guest memory); the record mix is
// 55 % raw, 20 % zero, 10 % base refs, 15 % small xor deltas.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseVmSpec } from '@cloudlet/qemu-driver';
import { createOverlayWriter, openOverlay, xzCodec, zstdCodec } from '../dist/index.js';

const MIB = 1024 * 1024;
const totalMiB = Number(process.argv[2] ?? 64);
const pages = (totalMiB * MIB) / 4096;

function corpus(bytes) {
  const parts = [];
  let got = 0;
  for (const d of ['/usr/bin', '/usr/lib/x86_64-linux-gnu']) {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      try {
        if (!statSync(p).isFile()) continue;
        const b = readFileSync(p);
        parts.push(b);
        got += b.length;
      } catch {}
      if (got >= bytes) return Buffer.concat(parts);
    }
  }
  return Buffer.concat(parts);
}

const source = corpus(pages * 4096);
const records = [];
for (let i = 0; i < pages; i++) {
  const r = (i * 2654435761) % 100;
  const space = i < pages / 2 ? 'memory' : 'disk';
  const index = space === 'memory' ? i : i - pages / 2;
  let encoding;
  if (r < 55)
    encoding = { kind: 'raw', data: source.subarray((i * 4096) % (source.length - 4096)).subarray(0, 4096) };
  else if (r < 75) encoding = { kind: 'zero' };
  else if (r < 85) encoding = { kind: 'base-disk', index: i % 1000 };
  else encoding = { kind: 'xor', delta: source.subarray(i % 4000, (i % 4000) + 64) };
  records.push({ space, index, encoding });
}
const fields = {
  base: { id: 'ab'.repeat(32), diskBytes: pages * 4096, memoryPages: pages },
  vm: {
    spec: parseVmSpec({ memoryMiB: 16, disks: [{ file: '/d', format: 'raw' }] }),
    diskBytes: pages * 4096,
    memoryPages: pages,
    ramBlocks: [{ name: 'pc.ram', bytes: pages * 4096 }],
  },
};

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
  const overlay = await openOverlay(file);
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
