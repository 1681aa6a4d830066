// Terminal noise removal for serial output. busybox ash asks for the cursor position (ESC[6n) at every
// prompt and redraws long lines with CSI sequences; the tty adds CR before LF. A state machine (rather than
// a regex) so an escape sequence split across two chunks is still removed.

const ESC = 0x1b;
const BEL = 0x07;

type State = 'text' | 'esc' | 'escIntermediate' | 'csi' | 'osc' | 'oscEsc';

function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x0a && code !== 0x09) || code === 0x7f;
}

/** Returns a function that takes raw text chunks and returns them without ANSI sequences, CR and controls. */
export function createAnsiStripper(): (chunk: string) => string {
  let state: State = 'text';
  return (chunk) => {
    let out = '';
    for (const char of chunk) {
      const code = char.charCodeAt(0);
      switch (state) {
        case 'text':
          if (code === ESC) state = 'esc';
          else if (!isControl(code)) out += char;
          break;
        case 'esc':
          state = escFollower(code);
          break;
        case 'escIntermediate':
          // ESC ( B and friends: intermediates, then one final byte.
          if (code < 0x20 || code > 0x2f) state = 'text';
          break;
        case 'csi':
          // Parameters and intermediates are 0x20-0x3f; the final byte is 0x40-0x7e.
          if (code >= 0x40 && code <= 0x7e) state = 'text';
          else if (code === ESC) state = 'esc';
          break;
        case 'osc':
          if (code === BEL) state = 'text';
          else if (code === ESC) state = 'oscEsc';
          break;
        case 'oscEsc':
          state = code === 0x5c ? 'text' : 'osc';
          break;
      }
    }
    return out;
  };
}

function escFollower(code: number): State {
  if (code === 0x5b) return 'csi'; // [
  if (code === 0x5d) return 'osc'; // ]
  if (code >= 0x20 && code <= 0x2f) return 'escIntermediate';
  return 'text'; // two-byte sequence such as ESC 7 or ESC M
}
