import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, pageIndexer } from '../src/index.js';

const blocks = [
  { name: 'pc.ram', length: 4 * PAGE_SIZE },
  { name: 'pc.bios', length: PAGE_SIZE },
  { name: 'rom', length: 2 * PAGE_SIZE },
];

describe('pageIndexer', () => {
  it('lays blocks end to end in table order', () => {
    const ix = pageIndexer(blocks);
    expect(ix.pageCount).toBe(7);
    expect(ix.indexOf('pc.ram', 0)).toBe(0);
    expect(ix.indexOf('pc.ram', 3 * PAGE_SIZE)).toBe(3);
    expect(ix.indexOf('pc.bios', 0)).toBe(4);
    expect(ix.indexOf('rom', PAGE_SIZE)).toBe(6);
    expect(ix.locate(4)).toEqual({ block: 'pc.bios', offset: 0 });
    expect(ix.locate(6)).toEqual({ block: 'rom', offset: PAGE_SIZE });
  });

  it('rejects what is not a page', () => {
    const ix = pageIndexer(blocks);
    expect(() => ix.indexOf('nope', 0)).toThrow(RangeError);
    expect(() => ix.indexOf('pc.bios', PAGE_SIZE)).toThrow(RangeError);
    expect(() => ix.indexOf('pc.ram', 100)).toThrow(RangeError);
    expect(() => ix.indexOf('pc.ram', -PAGE_SIZE)).toThrow(RangeError);
    expect(() => ix.locate(7)).toThrow(RangeError);
    expect(() => ix.locate(-1)).toThrow(RangeError);
    expect(() => ix.locate(0.5)).toThrow(RangeError);
    expect(() => pageIndexer([{ name: 'a', length: 100 }])).toThrow(RangeError);
    expect(() => pageIndexer([...blocks, ...blocks])).toThrow(RangeError);
  });

  it('locate inverts indexOf for every page of random tables', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (sizes) => {
        const table = sizes.map((pages, i) => ({ name: `b${i}`, length: pages * PAGE_SIZE }));
        const ix = pageIndexer(table);
        expect(ix.pageCount).toBe(sizes.reduce((a, b) => a + b, 0));
        for (let i = 0; i < ix.pageCount; i++) {
          const { block, offset } = ix.locate(i);
          expect(ix.indexOf(block, offset)).toBe(i);
        }
      }),
    );
  });
});
