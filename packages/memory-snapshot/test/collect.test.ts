import { describe, expect, it } from 'vitest';
import { collectMigrationStream, MigrationStreamError } from '../src/index.js';
import { buildStream, chunked, PAGE, patternPage } from './stream-builder.js';

const stream = buildStream({
  blocks: [{ name: 'pc.ram', length: 8 * PAGE }],
  sections: [
    [
      { block: 'pc.ram', offset: 0, data: patternPage(1) },
      { block: 'pc.ram', offset: PAGE, data: null },
    ],
    [{ block: 'pc.ram', offset: 2 * PAGE, data: patternPage(2) }],
  ],
  vmdesc: '{"page_size":4096}',
});

describe('collectMigrationStream', () => {
  it('holds the prologue, non-zero pages, device tail and vmdesc, counting zero pages and bytes', async () => {
    const collected = await collectMigrationStream(chunked(stream.bytes, [7, 4099]));
    expect(collected.prologue.blocks).toEqual([{ name: 'pc.ram', length: 8 * PAGE }]);
    expect(collected.pages.map((p) => [p.offset, p.data?.[0]])).toEqual([
      [0, patternPage(1)[0]],
      [2 * PAGE, patternPage(2)[0]],
    ]);
    expect(collected.zeroPages).toBe(1);
    expect(collected.deviceTail).toEqual(stream.deviceTail);
    expect(new TextDecoder().decode(collected.vmdesc)).toBe('{"page_size":4096}');
    expect(collected.bytes).toBe(stream.bytes.length);
  });

  it('keeps zero pages when asked', async () => {
    const collected = await collectMigrationStream(chunked(stream.bytes), { keepZeroPages: true });
    expect(collected.pages.map((p) => p.data === null)).toEqual([false, true, false]);
  });

  it('raises the reader error on a truncated stream', async () => {
    const cut = stream.bytes.subarray(0, stream.bytes.length - 40);
    await expect(collectMigrationStream(chunked(cut))).rejects.toBeInstanceOf(MigrationStreamError);
  });
});
