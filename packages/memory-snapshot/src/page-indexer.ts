import { PAGE_SIZE } from './format.js';
import type { RamBlock } from './types.js';

/**
 * Maps (block, offset) to a flat page index: the blocks' pages laid end to end in block-table
 * order, so page i of block k has index (pages of blocks 0..k-1) + i.
 */
export interface PageIndexer {
  /** Total pages over all blocks. */
  readonly pageCount: number;
  /** Throws RangeError for an unknown block or an offset that is not a page of it. */
  indexOf(block: string, offset: number): number;
  /** Inverse of indexOf; throws RangeError outside [0, pageCount). */
  locate(index: number): { block: string; offset: number };
}

export function pageIndexer(blocks: readonly RamBlock[]): PageIndexer {
  const names = blocks.map((b) => b.name);
  const firstPage: number[] = [];
  const pagesOf = new Map<string, { first: number; pages: number }>();
  let pageCount = 0;
  for (const b of blocks) {
    if (b.length % PAGE_SIZE !== 0)
      throw new RangeError(`RAM block "${b.name}" length ${b.length} is not whole pages`);
    if (pagesOf.has(b.name)) throw new RangeError(`duplicate RAM block "${b.name}"`);
    const pages = b.length / PAGE_SIZE;
    firstPage.push(pageCount);
    pagesOf.set(b.name, { first: pageCount, pages });
    pageCount += pages;
  }
  return {
    pageCount,
    indexOf(block, offset) {
      const entry = pagesOf.get(block);
      if (entry === undefined) throw new RangeError(`unknown RAM block "${block}"`);
      const page = offset / PAGE_SIZE;
      if (!Number.isInteger(page) || page < 0 || page >= entry.pages) {
        throw new RangeError(`offset ${offset} is not a page of RAM block "${block}"`);
      }
      return entry.first + page;
    },
    locate(index) {
      if (!Number.isInteger(index) || index < 0 || index >= pageCount) {
        throw new RangeError(`page index ${index} outside [0, ${pageCount})`);
      }
      // Last block whose first page is <= index.
      let lo = 0;
      let hi = firstPage.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if ((firstPage[mid] as number) <= index) lo = mid;
        else hi = mid - 1;
      }
      return { block: names[lo] as string, offset: (index - (firstPage[lo] as number)) * PAGE_SIZE };
    },
  };
}
