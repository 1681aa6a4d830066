import { CHUNK_SIZE, HASH_SIZE, zeroHash } from './chunk.js';
import type { ChunkAddress, ChunkIndex, ChunkSpace } from './chunk-index.js';

/** hash → the base chunk that holds that content, for dedup of overlay chunks against a base. */
export interface DedupLookup {
  /**
   * The base chunk with this content, or undefined. Memory wins over disk (the memory snapshot
   * is the canonical copy, as in Elijah), and the lowest index wins within a space. Zero chunks
   * are not held: callers check isZeroChunk first, since zero gets its own, cheaper record.
   */
  find(hash: Uint8Array): ChunkAddress | undefined;
  /** Distinct non-zero hashes held. */
  readonly size: number;
  /** Bytes this lookup keeps alive: both indexes' hash arrays (shared, not copied) plus its table. */
  readonly memoryBytes: number;
}

const WORDS_PER_HASH = HASH_SIZE / 4;
/** Table slots per entry, at least: keeps linear-probe chains short (load factor ≤ 2/3). */
const MIN_SLOTS_PER_ENTRY = 1.5;

/** The hash array as 32-bit words, copied only if it is not 4-byte aligned. */
function wordsOf(index: ChunkIndex | undefined): Uint32Array {
  if (index === undefined) return new Uint32Array(0);
  const bytes = index.hashes.byteOffset % 4 === 0 ? index.hashes : Uint8Array.from(index.hashes);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

function checkIndex(index: ChunkIndex | undefined, space: ChunkSpace): void {
  if (index === undefined) return;
  if (index.kind !== space) throw new RangeError(`a ${index.kind} index passed as ${space}`);
  if (index.chunkSize !== CHUNK_SIZE) throw new RangeError(`${space} index chunk size ${index.chunkSize}`);
  if (index.hashes.length !== index.count * HASH_SIZE) {
    throw new RangeError(
      `${space} index says ${index.count} chunks but holds ${index.hashes.length} hash bytes`,
    );
  }
}

/**
 * Open addressing over the indexes' own hash arrays, so the only extra memory is one uint32 per
 * slot (an 8 GiB disk + 1 GiB RAM base: 75.5 MB of hashes + 16.8 MB of table). Entry ids number
 * memory chunks first, then disk chunks. A slot holds (tag << idBits) | (id + 1), 0 = empty; the
 * slot position comes from hash word 0 (sha256 is uniform, no mixing needed) and the tag from the
 * top bits of word 1, so a probe touches the 32-byte hash only when the tag matches — ~1 in 2^tagBits
 * for a foreign entry — instead of taking a cache miss per occupied slot.
 */
export function createDedupLookup(indexes: { memory?: ChunkIndex; disk?: ChunkIndex }): DedupLookup {
  const { memory, disk } = indexes;
  checkIndex(memory, 'memory');
  checkIndex(disk, 'disk');
  const memoryWords = wordsOf(memory);
  const diskWords = wordsOf(disk);
  const memoryCount = memory?.count ?? 0;
  const total = memoryCount + (disk?.count ?? 0);
  if (total > 0x3fff_ffff) throw new RangeError(`${total} chunks is more than this lookup can number`);

  // Bits for id + 1 ≤ total: total's bit length (integer maths, no log2 rounding at powers of two).
  const idBits = Math.max(1, 32 - Math.clz32(total));
  const idMask = 2 ** idBits - 1;
  let slots = 2;
  while (slots < total * MIN_SLOTS_PER_ENTRY) slots *= 2;
  const mask = slots - 1;
  const table = new Uint32Array(slots);

  const zero = new Uint32Array(zeroHash.buffer.slice(zeroHash.byteOffset, zeroHash.byteOffset + HASH_SIZE));
  const query = new Uint8Array(HASH_SIZE);
  const queryWords = new Uint32Array(query.buffer);

  /** Does entry `id` hold the hash in `q` starting at word `qAt`? */
  function entryEquals(id: number, q: Uint32Array, qAt: number): boolean {
    const words = id < memoryCount ? memoryWords : diskWords;
    const at = (id < memoryCount ? id : id - memoryCount) * WORDS_PER_HASH;
    return (
      words[at] === q[qAt] &&
      words[at + 1] === q[qAt + 1] &&
      words[at + 2] === q[qAt + 2] &&
      words[at + 3] === q[qAt + 3] &&
      words[at + 4] === q[qAt + 4] &&
      words[at + 5] === q[qAt + 5] &&
      words[at + 6] === q[qAt + 6] &&
      words[at + 7] === q[qAt + 7]
    );
  }

  /** Slot position of the hash at `q[qAt..]`, or of the empty slot where it would go (negative: -(p+1)). */
  function probe(q: Uint32Array, qAt: number): number {
    const tag = (q[qAt + 1] as number) >>> idBits;
    let p = (q[qAt] as number) & mask;
    for (;;) {
      const slot = table[p] as number;
      if (slot === 0) return -(p + 1);
      if (slot >>> idBits === tag && entryEquals((slot & idMask) - 1, q, qAt)) return p;
      p = (p + 1) & mask;
    }
  }

  let size = 0;
  // Insert in priority order (memory before disk, ascending index): the first copy of a hash wins.
  const sources: [Uint32Array, number][] = [
    [memoryWords, 0],
    [diskWords, memoryCount],
  ];
  for (const [words, firstId] of sources) {
    const n = words.length / WORDS_PER_HASH;
    for (let i = 0; i < n; i++) {
      const at = i * WORDS_PER_HASH;
      if (entryEqualsZero(words, at, zero)) continue;
      const p = probe(words, at);
      if (p >= 0) continue;
      const tag = (words[at + 1] as number) >>> idBits;
      table[-p - 1] = (tag * 2 ** idBits + firstId + i + 1) >>> 0;
      size++;
    }
  }

  const spaceOf = (id: number): ChunkAddress =>
    id < memoryCount ? { space: 'memory', index: id } : { space: 'disk', index: id - memoryCount };

  return {
    size,
    memoryBytes: memoryWords.byteLength + diskWords.byteLength + table.byteLength,
    find(hash) {
      if (hash.length !== HASH_SIZE)
        throw new RangeError(`hash of ${hash.length} bytes, expected ${HASH_SIZE}`);
      query.set(hash);
      const p = probe(queryWords, 0);
      return p < 0 ? undefined : spaceOf(((table[p] as number) & idMask) - 1);
    },
  };
}

function entryEqualsZero(words: Uint32Array, at: number, zero: Uint32Array): boolean {
  for (let k = 0; k < WORDS_PER_HASH; k++) if (words[at + k] !== zero[k]) return false;
  return true;
}
