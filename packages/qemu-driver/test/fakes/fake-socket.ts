import { Duplex } from 'node:stream';

/**
 * One end of a connection, in memory: what the code under test writes is collected (and announced to
 * `onLine` line by line), and the test plays the peer with `send`, `end` and `hangUp`.
 */
export interface FakeSocket {
  readonly socket: Duplex;
  readonly written: string[];
  /** Raw bytes written, in order. */
  readonly bytes: Buffer[];
  send(data: string | Buffer): void;
  /** The peer finishes sending (EOF after the data already sent). */
  end(): void;
  /** The peer drops the connection at once (QEMU died). */
  hangUp(): void;
  onLine(listener: (line: string) => void): void;
  /** Called when the code under test ends its side. */
  onFinish(listener: () => void): void;
  /** Called for every chunk the code under test writes. */
  onData(listener: (chunk: Buffer) => void): void;
  /** All written text so far. */
  text(): string;
}

export function fakeSocket(): FakeSocket {
  const written: string[] = [];
  const bytes: Buffer[] = [];
  const lineListeners: ((line: string) => void)[] = [];
  const finishListeners: (() => void)[] = [];
  const dataListeners: ((chunk: Buffer) => void)[] = [];
  let pending = '';
  const announceLines = (text: string) => {
    pending += text;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      for (const listener of lineListeners) listener(line);
      newline = pending.indexOf('\n');
    }
  };
  // Like a net.Socket with allowHalfOpen false: when one direction ends, the other follows.
  const socket = new Duplex({
    allowHalfOpen: false,
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      bytes.push(Buffer.from(chunk));
      written.push(chunk.toString());
      announceLines(chunk.toString());
      for (const listener of dataListeners) listener(Buffer.from(chunk));
      // Asynchronous like a real socket, so a fast writer cannot starve timers.
      setImmediate(callback);
    },
    final(callback) {
      for (const listener of finishListeners) listener();
      this.push(null);
      callback();
    },
  });
  return {
    socket,
    written,
    bytes,
    send: (data) => {
      socket.push(data);
    },
    end: () => {
      socket.push(null);
    },
    hangUp: () => {
      socket.push(null);
      socket.destroy();
    },
    onLine: (listener) => lineListeners.push(listener),
    onFinish: (listener) => finishListeners.push(listener),
    onData: (listener) => dataListeners.push(listener),
    text: () => written.join(''),
  };
}
