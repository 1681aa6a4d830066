import { type SpaceIndex, sortedPosition } from './chunk-index.js';
import { OverlayFormatError } from './errors.js';
import type { ChunkSpace } from './records.js';

/**
 * A `self` record copies a chunk the applier has already rebuilt, so its target must be in the
 * overlay and come earlier in record order. Positions: memory records are 0..M-1, disk records M.. .
 */
export function checkSelfReferences(
  references: readonly { at: number; to: { space: ChunkSpace; index: number } }[],
  sorted: Record<ChunkSpace, SpaceIndex & { order: number[] }>,
): void {
  const memoryCount = sorted.memory.order.length;
  for (const { at, to } of references) {
    const space = sorted[to.space];
    const found = sortedPosition(space.indexes, to.index);
    const target = found < 0 ? -1 : (space.order[found] as number) + (to.space === 'disk' ? memoryCount : 0);
    if (found < 0 || target >= at)
      throw new OverlayFormatError(
        'invalid-use',
        `a self reference to ${to.space} chunk ${to.index} ${found < 0 ? 'names a chunk not in the overlay' : 'comes before that chunk'}`,
      );
  }
}
