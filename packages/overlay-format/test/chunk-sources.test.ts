import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { bufferChunkSource, createOverlayWriter, fileChunkSource, openOverlay } from '../src/index.js';
import { chunkSourceConformance } from './chunk-source.suite.js';
import { manifestFields } from './fixtures.js';

const dir = testTempDir('overlay-format-');
let n = 0;
chunkSourceConformance('file', async (bytes) => {
  const file = join(dir, `source-${n++}.bin`);
  writeFileSync(file, bytes);
  return fileChunkSource(file);
});
chunkSourceConformance('buffer', async (bytes) => bufferChunkSource(bytes));

describe('openOverlay over a ChunkSource', () => {
  it('reads an overlay through a source that counts its reads', async () => {
    const file = join(dir, 'via-source.zip');
    const writer = createOverlayWriter({ file, workers: 0 });
    await writer.add({ space: 'disk', index: 1, encoding: { kind: 'zero' } });
    await writer.finish(manifestFields());
    const inner = await fileChunkSource(file);
    let reads = 0;
    const overlay = await openOverlay({
      size: () => inner.size(),
      read: (offset, length) => {
        reads++;
        return inner.read(offset, length);
      },
    });
    expect(await overlay.readSegment(0)).toEqual([{ space: 'disk', index: 1, encoding: { kind: 'zero' } }]);
    expect(reads).toBeGreaterThan(0);
    await overlay.close();
    await inner.close?.();
  });
});
