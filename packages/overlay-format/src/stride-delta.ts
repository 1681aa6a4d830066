// The stride transform of raw pages (format 5, docs/overlay-format.md "Raw pages"). Heaps, slab caches and
// arrays hold fixed-size records: each differs from the one before it in a few bytes (a counter, a pointer,
// a digit). zstd codes those as many short matches and Huffman literals with no context, and does poorly
// (measured on an awk heap: zstd-19 1.11 MB, xz 0.78 MB); the same page with each byte minus the byte one
// record earlier is mostly zero bytes and repeats of one small pattern (0.37 MB). Which pages are records,
// and of what size, is guessed per page; a page keeps the transform only where it makes the bytes much more
// predictable, so code and text pages (and the x86 transform) are left as they were.

const PAGE_BYTES = 4096;
/** Strides tried: 8 to 512 bytes in steps of 8 (records are word-aligned). */
const STRIDE_UNIT = 8;
const STRIDE_COUNT = 64;
/** Sampled positions: every 29th byte (29 is prime to 8, so every offset in a record is seen) from 512 on. */
const SAMPLE_FROM = STRIDE_UNIT * STRIDE_COUNT;
const SAMPLE_STEP = 29;
/** Strides with most matching sampled bytes whose transform is then weighed. */
const CANDIDATES = 3;
/**
 * Pages where no stride matches this share of the sampled nonzero bytes are left alone without weighing
 * (measured: no page below it kept the transform; code and random pages mostly are below it).
 */
const MIN_MATCH_SHARE = 0.3;
/** The transformed page's order-0 entropy must be at most this share of the page's own (measured). */
const MAX_ENTROPY_SHARE = 0.7;

/** c · log2(c) for every count a byte value can have in a page. */
const X_LOG_X = Float64Array.from({ length: PAGE_BYTES + 1 }, (_, c) => (c === 0 ? 0 : c * Math.log2(c)));
const matches = new Uint32Array(STRIDE_COUNT + 1);
const histogram = new Uint32Array(256);

/**
 * The stride (bytes) `page` should be coded with, or 0 for none. Deterministic, but the decoder does not
 * depend on it: the stride travels with the page.
 */
export function chooseStride(page: Uint8Array): number {
  const sampled = countMatches(page);
  const candidates = topStrides();
  const most = candidates.length === 0 ? 0 : (matches[candidates[0] as number] as number);
  if (most < MIN_MATCH_SHARE * sampled) return 0;
  const limit = MAX_ENTROPY_SHARE * entropyBits(page, 0);
  let best = 0;
  let bestBits = limit;
  for (const units of candidates) {
    const bits = entropyBits(page, units * STRIDE_UNIT);
    if (bits < bestBits) {
      bestBits = bits;
      best = units * STRIDE_UNIT;
    }
  }
  return best;
}

/** Sets matches[s] to the sampled nonzero bytes equal to the byte s·8 before them; returns how many were sampled. */
function countMatches(page: Uint8Array): number {
  matches.fill(0);
  let sampled = 0;
  for (let i = SAMPLE_FROM; i < page.length; i += SAMPLE_STEP) {
    const value = page[i] as number;
    if (value === 0) continue; // zeros repeat at every stride
    sampled++;
    for (let s = 1, j = i - STRIDE_UNIT; s <= STRIDE_COUNT; s++, j -= STRIDE_UNIT) {
      if (page[j] === value) (matches[s] as number)++;
    }
  }
  return sampled;
}

/** The CANDIDATES strides (in units) with the most matches, the smaller first on ties; none with zero. */
function topStrides(): number[] {
  const top: number[] = [];
  for (let s = 1; s <= STRIDE_COUNT; s++) {
    const count = matches[s] as number;
    if (count === 0) continue;
    let at = top.length;
    while (at > 0 && (matches[top[at - 1] as number] as number) < count) at--;
    if (at < CANDIDATES) top.splice(at, 0, s);
    if (top.length > CANDIDATES) top.pop();
  }
  return top;
}

/** Order-0 entropy in bits of `page` stride-coded with `stride` (0: the page itself). */
function entropyBits(page: Uint8Array, stride: number): number {
  histogram.fill(0);
  for (let i = 0; i < stride; i++) (histogram[page[i] as number] as number)++;
  if (stride === 0) for (let i = 0; i < page.length; i++) (histogram[page[i] as number] as number)++;
  else
    for (let i = stride; i < page.length; i++)
      (histogram[((page[i] as number) - (page[i - stride] as number)) & 0xff] as number)++;
  let sum = 0;
  for (let b = 0; b < 256; b++) sum += X_LOG_X[histogram[b] as number] as number;
  return (X_LOG_X[page.length] as number) - sum;
}

/** Rewrites `page` in place: each byte from `stride` on becomes itself minus the byte `stride` before it. */
export function encodeStrideDelta(page: Uint8Array, stride: number): void {
  for (let i = page.length - 1; i >= stride; i--)
    page[i] = ((page[i] as number) - (page[i - stride] as number)) & 0xff;
}

/** Undoes encodeStrideDelta, in place. */
export function decodeStrideDelta(page: Uint8Array, stride: number): void {
  for (let i = stride; i < page.length; i++)
    page[i] = ((page[i] as number) + (page[i - stride] as number)) & 0xff;
}
