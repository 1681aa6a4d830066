import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bufferChunkSource } from '../src/index.js';
import { readLocalHeader, signatureAt } from '../src/local-header.js';
import { writeUploadFixture } from './upload-fixtures.js';
import { readZip } from './zip-tools.js';

describe("the writer's layout", () => {
  it('puts manifest.json, chunk-index.bin, blobs, segments in order, each local header with its CRC-32 and sizes', async () => {
    const { bytes, file } = await writeUploadFixture();
    const source = bufferChunkSource(bytes);
    const local: string[] = [];
    let offset = 0;
    while ((await signatureAt(source, offset)) === 'local') {
      const entry = await readLocalHeader(source, offset);
      expect(bytes.readUInt16LE(offset + 6) & 0x8).toBe(0); // no data descriptor
      expect(entry.crc32).toBe(crc32(bytes.subarray(entry.dataStart, entry.dataStart + entry.size)));
      local.push(entry.name);
      offset = entry.dataStart + entry.size;
    }
    expect(await signatureAt(source, offset)).toBe('central');
    const entries = await readZip(file);
    const manifest = JSON.parse(String(entries[0]?.data)) as {
      segments: { entry: string; space: string }[];
      blobs: { entry: string }[];
    };
    expect(local).toEqual([
      'manifest.json',
      'chunk-index.bin',
      ...manifest.blobs.map((b) => b.entry),
      ...manifest.segments.map((s) => s.entry),
    ]);
    expect(manifest.segments.findIndex((s) => s.space === 'disk')).toBeGreaterThan(0);
    expect(entries.map((e) => e.name)).toEqual(local);
  });
});
