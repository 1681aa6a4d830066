// VM-like records for the benches. Pages come from /usr/bin and /usr/lib binaries (compressible like
// guest memory); the record mix is 55 % raw, 20 % zero, 10 % base refs, 15 % small xor deltas.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseVmSpec } from '@cloudlet/qemu-driver';

const MIB = 1024 * 1024;

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

/** `totalMiB` of chunks as records, and manifest fields that fit them. */
export function benchRecords(totalMiB) {
  const pages = (totalMiB * MIB) / 4096;
  const source = corpus(pages * 4096);
  const records = [];
  for (let i = 0; i < pages; i++) {
    const r = (i * 2654435761) % 100;
    const space = i < pages / 2 ? 'memory' : 'disk';
    const index = space === 'memory' ? i : i - pages / 2;
    let encoding;
    if (r < 55)
      encoding = {
        kind: 'raw',
        data: source.subarray((i * 4096) % (source.length - 4096)).subarray(0, 4096),
      };
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
  return { records, fields };
}
