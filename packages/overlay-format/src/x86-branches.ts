// The x86 address transform of raw pages (format 4, docs/overlay-format.md "Raw pages"). A new app's binaries
// are much of its overlay (the page cache of what it installed), and their relative operands differ at every
// place that names one function or variable; written as targets from the page's address they repeat, which
// zstd and xz find (docs/decisions.md). Our own scheme, not xz's BCJ: it knows where a page sits, and it is
// provably reversible one page at a time.
//
// Converted: the rel32 of CALL/JMP (E8/E9) and the disp32 of RIP-relative MOV/LEA with REX.W
// (48/4C, 8B/8D, ModRM 00 reg 101), when the operand's top byte is 00 or FF (a target within ±16 MiB).
// Targets are kept modulo 2^25 and written back with a 00/FF top byte, so the decoder, scanning the same way,
// finds a candidate exactly where the encoder converted one and skips the same operand. What could differ is a
// byte the encoder looked at and left alone, rewritten by a later operand: only an unconverted candidate's top
// byte can be (the opcode and ModRM bytes a mismatch stops at cannot begin a converted instruction), so no
// operand is converted that covers one.

const TARGET_BITS = 25;
const ADDRESS_PERIOD = 2 ** TARGET_BITS;

const NOT_AN_OPCODE = 0;
const REL32_AFTER_OPCODE = 1; // E8 call, E9 jmp
const REX_W_PREFIX = 2; // 48 / 4C: RIP-relative MOV/LEA if 8B/8D and ModRM 00 reg 101 follow
const FIRST_BYTE = new Uint8Array(256);
FIRST_BYTE[0xe8] = FIRST_BYTE[0xe9] = REL32_AFTER_OPCODE;
FIRST_BYTE[0x48] = FIRST_BYTE[0x4c] = REX_W_PREFIX;

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
  const length = bytes.length;
  let leftAlone = -1; // the last top byte of an unconverted candidate: no operand may cover it
  for (let i = 0; i + 5 <= length; i++) {
    const kind = FIRST_BYTE[bytes[i] as number] as number;
    if (kind === NOT_AN_OPCODE) continue;
    const operand = operandAt(bytes, i, kind, length);
    if (operand < 0) continue;
    const top = bytes[operand + 3];
    if ((top === 0x00 || top === 0xff) && operand > leftAlone) {
      rewrite(bytes, operand, direction * (origin + operand + 4));
      i = operand + 3; // the loop's i++ steps past the operand
    } else leftAlone = operand + 3;
  }
}

/** Where the 4-byte operand of a candidate instruction at `i` (its first byte of `kind`) starts, or -1. */
function operandAt(bytes: Uint8Array, i: number, kind: number, length: number): number {
  if (kind === REL32_AFTER_OPCODE) return i + 1;
  if (kind !== REX_W_PREFIX || i + 7 > length) return -1;
  const opcode = bytes[i + 1];
  if (opcode !== 0x8b && opcode !== 0x8d) return -1;
  return ((bytes[i + 2] as number) & 0xc7) === 0x05 ? i + 3 : -1;
}

/** Adds `shift` to the operand at `at` and keeps the low 25 bits, sign-extended. */
function rewrite(bytes: Uint8Array, at: number, shift: number): void {
  const operand =
    (bytes[at] as number) |
    ((bytes[at + 1] as number) << 8) |
    ((bytes[at + 2] as number) << 16) |
    ((bytes[at + 3] as number) << 24);
  // |operand| < 2^24 and |shift| < 2^25 + a page: the sum fits in 32 bits before the sign extension.
  const result = ((operand + shift) << (32 - TARGET_BITS)) >> (32 - TARGET_BITS);
  bytes[at] = result & 0xff;
  bytes[at + 1] = (result >>> 8) & 0xff;
  bytes[at + 2] = (result >>> 16) & 0xff;
  bytes[at + 3] = (result >>> 24) & 0xff;
}
