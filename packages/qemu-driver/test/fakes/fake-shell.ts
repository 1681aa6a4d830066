import { type FakeSocket, fakeSocket } from './fake-socket.js';

export const PROMPT = '\x1b[6nvm# ';
const WRAPPED_LINE = /^echo __S(\w+)''__; ([\s\S]*?)(?:; | )echo __E\1''__\$\?$/;

export interface FakeShell extends FakeSocket {
  /** What a command prints and its exit status. */
  respond(command: string, output: string, status?: number): void;
  /** Split outgoing text into chunks of this size (1 = byte by byte). */
  chunkSize: number;
  /** Column at which the typed-line echo wraps (like ash on an 80-column tty). */
  wrapAt: number;
  /** Commands that never finish. */
  hang(command: string): void;
}

/** Plays busybox ash on a serial line: echoes typed lines (wrapped), answers marker lines, prints prompts. */
export function fakeShell(): FakeShell {
  const peer = fakeSocket();
  const responses = new Map<string, { output: string; status: number }>();
  const hung = new Set<string>();
  const shell: FakeShell = {
    ...peer,
    chunkSize: 1 << 20,
    wrapAt: 80,
    respond: (command, output, status = 0) => responses.set(command, { output, status }),
    hang: (command) => hung.add(command),
  };
  const emit = (text: string) => {
    for (let i = 0; i < text.length; i += shell.chunkSize) peer.send(text.slice(i, i + shell.chunkSize));
  };
  const echo = (line: string) => {
    // ash redraws long input lines: a wrapped echo carries CR, spaces and cursor movement.
    const parts: string[] = [];
    for (let i = 0; i < line.length; i += shell.wrapAt) parts.push(line.slice(i, i + shell.wrapAt));
    return `${parts.join(' \r\x1b[K\n')}\r\n`;
  };
  peer.onLine((line) => {
    const match = WRAPPED_LINE.exec(line);
    let answer = '';
    if (match) {
      const [, tag, command = ''] = match;
      if (hung.has(command)) return emit(echo(line));
      const { output, status } = responses.get(command) ?? { output: '', status: 0 };
      answer = `__S${tag}__\r\n${output.replaceAll('\n', '\r\n')}__E${tag}__${status}\r\n`;
    }
    emit(`${echo(line)}${answer}${PROMPT}`);
  });
  return shell;
}
