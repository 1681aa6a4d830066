// The x86 branch transform of raw pages (format 3, docs/overlay-format.md "Raw pages"). A new app's binaries
// are much of its overlay (the page cache of what it installed), and their CALL/JMP rel32 operands differ at
// every call site of one function; written as targets from the page's address they repeat, which zstd and xz
// find: the server-app overlay −3.6 % with zstd, and −1.0 % against xz's own x86 filter on whole segments,
// which cannot know where a page sits (docs/decisions.md). Our own scheme, not xz's BCJ: simpler, and
// provably reversible one page at a time.
//
// A candidate is E8/E9 at offset i (i + 5 ≤ page length) whose operand's top byte is 00 or FF (a target
// within ±16 MiB). It is converted unless an unconverted E8/E9 lies in the 3 bytes before: that one's operand
// top byte would be rewritten, and the decoder, which sees the rewritten byte, would decide otherwise.
// Targets are kept modulo 2^25 and written back with a 00/FF top byte, so the decoder sees a candidate
// exactly where the encoder converted one.

const TARGET_BITS = 25;
const ADDRESS_PERIOD = 2 ** TARGET_BITS;

/** Rewrites `page` in place: each converted operand becomes its target, counted from `address`. */
export function encodeX86Branches(page: Uint8Array, address: number): void {
  transform(page, address, 1);
}

/** Undoes encodeX86Branches on `page`, in place (any bytes decode; only an encoded page decodes to its origin). */
export function decodeX86Branches(page: Uint8Array, address: number): void {
  transform(page, address, -1);
}

function transform(bytes: Uint8Array, address: number, direction: 1 | -1): void {
  const origin = address % ADDRESS_PERIOD;
  const last = bytes.length - 5;
  let unconverted = -4;
  // indexOf is native (memchr): most bytes are no opcode, and a JS loop over each one was 3x slower.
  let nextE8 = bytes.indexOf(0xe8);
  let nextE9 = bytes.indexOf(0xe9);
  for (;;) {
    const i = nextE8 < 0 ? nextE9 : nextE9 < 0 ? nextE8 : Math.min(nextE8, nextE9);
    if (i < 0 || i > last) return;
    let resume = i + 1;
    const top = bytes[i + 4] as number;
    if ((top !== 0x00 && top !== 0xff) || i - unconverted <= 3) unconverted = i;
    else {
      rewrite(bytes, i, direction * (origin + i + 5));
      resume = i + 5;
    }
    if (nextE8 >= 0 && nextE8 < resume) nextE8 = bytes.indexOf(0xe8, resume);
    if (nextE9 >= 0 && nextE9 < resume) nextE9 = bytes.indexOf(0xe9, resume);
  }
}

/** Adds `shift` to the operand after the opcode at `i` and keeps the low 25 bits, sign-extended. */
function rewrite(bytes: Uint8Array, i: number, shift: number): void {
  const operand =
    (bytes[i + 1] as number) |
    ((bytes[i + 2] as number) << 8) |
    ((bytes[i + 3] as number) << 16) |
    ((bytes[i + 4] as number) << 24);
  // |operand| < 2^24 and |shift| < 2^25 + a page: the sum fits in 32 bits before the sign extension.
  const result = ((operand + shift) << (32 - TARGET_BITS)) >> (32 - TARGET_BITS);
  bytes[i + 1] = result & 0xff;
  bytes[i + 2] = (result >>> 8) & 0xff;
  bytes[i + 3] = (result >>> 16) & 0xff;
  bytes[i + 4] = (result >>> 24) & 0xff;
}
