import { Duplex } from 'node:stream';

/**
 * One end of a connection, in memory: what the code under test writes is collected (and announced to
 * `onLine` line by line), and the test plays the peer with `send` and `hangUp`.
 */
export interface FakeSocket {
  readonly socket: Duplex;
  readonly written: string[];
  send(data: string | Buffer): void;
  /** The peer closes the connection (QEMU quit or died). */
  hangUp(): void;
  onLine(listener: (line: string) => void): void;
  /** All written text so far. */
  text(): string;
}

export function fakeSocket(): FakeSocket {
  const written: string[] = [];
  const lineListeners: ((line: string) => void)[] = [];
  let pending = '';
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString();
      written.push(text);
      pending += text;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        for (const listener of lineListeners) listener(line);
        newline = pending.indexOf('\n');
      }
      callback();
    },
    final(callback) {
      this.push(null); // the peer answers our end with its own
      callback();
    },
  });
  return {
    socket,
    written,
    send: (data) => {
      socket.push(data);
    },
    hangUp: () => {
      socket.push(null);
      socket.destroy();
    },
    onLine: (listener) => lineListeners.push(listener),
    text: () => written.join(''),
  };
}
