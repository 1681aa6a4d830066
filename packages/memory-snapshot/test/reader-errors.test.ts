import { describe, expect, it } from 'vitest';
import { MigrationStreamError, type MigrationStreamLimits, readMigrationStream } from '../src/index.js';
import {
  ascii,
  ByteBuilder,
  buildStream,
  chunked,
  collect,
  concat,
  PAGE,
  patternPage,
  type SyntheticStreamSpec,
} from './stream-builder.js';

const base: SyntheticStreamSpec = {
  blocks: [
    { name: 'pc.ram', length: 8 * PAGE },
    { name: 'pc.rom', length: 2 * PAGE },
  ],
  sections: [
    [
      { block: 'pc.ram', offset: 0, data: patternPage(1) },
      { block: 'pc.ram', offset: PAGE, data: null },
    ],
    [{ block: 'pc.rom', offset: PAGE, data: patternPage(2) }],
  ],
};

async function failure(
  bytes: Uint8Array,
  limits?: MigrationStreamLimits,
  sizes?: number[],
): Promise<MigrationStreamError> {
  try {
    await collect(readMigrationStream(chunked(bytes, sizes), limits));
  } catch (e) {
    if (e instanceof MigrationStreamError) return e;
    throw e;
  }
  throw new Error('stream was accepted');
}

async function expectFailure(
  bytes: Uint8Array,
  code: string,
  offset: number,
  limits?: MigrationStreamLimits,
) {
  for (const sizes of [undefined, [1], [13, 4099]]) {
    const e = await failure(bytes, limits, sizes);
    expect({ code: e.code, offset: e.offset }).toEqual({ code, offset });
    expect(e.message).toContain(`${code} at byte ${offset}`);
  }
}

function patched(bytes: Uint8Array, at: number, values: ArrayLike<number>): Uint8Array {
  const copy = bytes.slice();
  copy.set(values, at);
  return copy;
}

/** Replaces bytes [from, to) of the stream with `insert`. */
function spliced(bytes: Uint8Array, from: number, to: number, insert: ArrayLike<number>): Uint8Array {
  return concat([bytes.subarray(0, from), Uint8Array.from(insert), bytes.subarray(to)]);
}

const be64 = (v: number) => new ByteBuilder().be64(v).bytes();

describe('readMigrationStream on malformed input', () => {
  const s = buildStream(base);
  const [rec0, rec1, rec2] = s.at.records as [number, number, number];

  it('bad magic and version', async () => {
    await expectFailure(patched(s.bytes, 0, [0x51, 0x45, 0x56, 0x4e]), 'bad-magic', 0);
    await expectFailure(patched(s.bytes, 4, [0, 0, 0, 2]), 'bad-version', 4);
  });

  it('a missing configuration section or an unknown configuration subsection', async () => {
    await expectFailure(patched(s.bytes, 8, [0x01]), 'unexpected-section', 8);
    const sub = new ByteBuilder().u8(0x05).str('configuration/novel').be32(1).be32(0).bytes();
    await expectFailure(
      spliced(s.bytes, s.at.ramStart, s.at.ramStart, sub),
      'unknown-subsection',
      s.at.ramStart + 1,
    );
  });

  it('a first section that is not the RAM START section', async () => {
    await expectFailure(patched(s.bytes, s.at.ramStart, [0x04]), 'unexpected-section', s.at.ramStart);
    await expectFailure(
      patched(s.bytes, s.at.ramStart + 6, ascii('rim')),
      'unexpected-section',
      s.at.ramStart + 5,
    );
  });

  it('a bad MEM_SIZE record or block table', async () => {
    await expectFailure(patched(s.bytes, s.at.memSize + 7, [0x05]), 'unknown-flags', s.at.memSize);
    const [name0, name1] = s.at.blockNames as [number, number];
    const [len0, len1] = s.at.blockLengths as [number, number];
    await expectFailure(patched(s.bytes, len0, be64(8 * PAGE + 512)), 'absurd-size', len0);
    // Total not reached: the EOS that follows is read as the next block, whose name length is 0.
    await expectFailure(patched(s.bytes, len1, be64(PAGE)), 'absurd-size', len1 + 8);
    await expectFailure(patched(s.bytes, len1, be64(4 * PAGE)), 'bad-block-table', len1);
    await expectFailure(patched(s.bytes, name1, [6, ...ascii('pc.ram')]), 'bad-block-table', name1);
    // An empty name; the rest of the block table then no longer lines up.
    await expectFailure(spliced(s.bytes, name0, len0, [0]), 'absurd-size', name0);
    await expectFailure(s.bytes, 'absurd-size', name1, { maxBlocks: 1 });
  });

  it('a block larger than 1 TiB (or the configured cap)', async () => {
    const huge = buildStream({ ...base, blocks: [{ name: 'pc.ram', length: 2 ** 41 }], sections: [[]] });
    await expectFailure(huge.bytes, 'absurd-size', huge.at.blockLengths[0] as number);
    const big = buildStream({ ...base, blocks: [{ name: 'pc.ram', length: 2 ** 30 }], sections: [[]] });
    await expectFailure(big.bytes, 'absurd-size', big.at.memSize, { maxBlockBytes: 2 ** 29, maxBlocks: 1 });
    await expectFailure(big.bytes, 'absurd-size', big.at.blockLengths[0] as number, {
      maxBlockBytes: 2 ** 29,
    });
  });

  it('no EOS after the block table', async () => {
    await expectFailure(patched(s.bytes, s.at.tableEos + 7, [0x08]), 'unknown-flags', s.at.tableEos);
  });

  it('records with unknown or contradictory flags', async () => {
    await expectFailure(patched(s.bytes, rec0 + 7, [0x08 | 0x40]), 'unknown-flags', rec0); // XBZRLE
    await expectFailure(patched(s.bytes, rec0 + 6, [0x01, 0x08]), 'unknown-flags', rec0); // COMPRESS_PAGE
    await expectFailure(patched(s.bytes, rec0 + 7, [0x0a]), 'unknown-flags', rec0); // ZERO|PAGE
    await expectFailure(patched(s.bytes, rec0 + 7, [0x20]), 'unknown-flags', rec0); // CONTINUE alone
    await expectFailure(patched(s.bytes, rec0 + 7, [0x18]), 'unknown-flags', rec0); // EOS|PAGE
    await expectFailure(patched(s.bytes, rec0 + 6, [0x10, 0x10]), 'unknown-flags', rec0); // EOS with offset
  });

  it('records naming an unknown block, or CONTINUE without a block', async () => {
    await expectFailure(patched(s.bytes, rec0 + 9, ascii('pc.rum')), 'unknown-block', rec0 + 8);
    await expectFailure(spliced(s.bytes, rec0 + 7, rec0 + 15, [0x28]), 'unknown-block', rec0);
    await expectFailure(patched(s.bytes, rec0 + 8, [0]), 'absurd-size', rec0 + 8);
  });

  it('a page offset beyond its block', async () => {
    await expectFailure(patched(s.bytes, rec1, be64(8 * PAGE + 0x22)), 'absurd-size', rec1);
    await expectFailure(patched(s.bytes, rec2, be64(2 ** 52 + 0x08)), 'absurd-size', rec2);
  });

  it('wrong or missing section footers', async () => {
    const [, second] = s.at.sections as [number, number];
    await expectFailure(patched(s.bytes, second - 1, [9]), 'bad-footer', second - 5);
    await expectFailure(patched(s.bytes, second - 5, [0x02]), 'bad-footer', second - 5);
    await expectFailure(
      patched(s.bytes, s.at.ramStart + 1, [0, 0, 0, 9]),
      'bad-footer',
      (s.at.records[0] as number) - 10,
    );
  });

  it('sections out of place', async () => {
    const [first, second] = s.at.sections as [number, number];
    await expectFailure(patched(s.bytes, first + 1, [0, 0, 0, 3]), 'unexpected-section', first);
    await expectFailure(patched(s.bytes, second, [0x04]), 'unexpected-section', second);
    await expectFailure(patched(s.bytes, second, [0x01]), 'unexpected-section', second);
    await expectFailure(patched(s.bytes, s.at.tail, [0x02]), 'unexpected-section', s.at.tail);
  });

  it('a device tail or vmdesc above its cap', async () => {
    await expectFailure(s.bytes, 'absurd-size', s.at.tail, { maxDeviceTailBytes: 10 });
    await expectFailure(s.bytes, 'absurd-size', s.at.vmdesc as number, { maxVmdescBytes: 10 });
    // While buffering: stops reading as soon as the sum of both caps is exceeded.
    await expectFailure(s.bytes, 'absurd-size', s.at.tail + 10 + 10 + 5, {
      maxDeviceTailBytes: 10,
      maxVmdescBytes: 10,
    });
  });

  it('truncation anywhere, with the offset where the input ended', async () => {
    for (const cut of [
      0,
      3,
      8,
      20,
      s.at.ramStart + 3,
      s.at.tableEos + 8,
      rec0 + 100,
      rec2 + 4100,
      s.at.tail + 3,
    ]) {
      await expectFailure(s.bytes.subarray(0, cut), 'truncated', cut);
    }
    await expectFailure(s.bytes.subarray(0, s.bytes.length - 1), 'truncated', s.bytes.length - 1);
    // Junk after the EOF byte is neither a vmdesc nor the end of the stream.
    const junk = concat([s.bytes.subarray(0, s.at.vmdesc as number), Uint8Array.of(0x01)]);
    await expectFailure(junk, 'truncated', junk.length);
  });
});
